// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.26;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// The pool functions the driver calls (as Uniswap v3's IUniswapV3PoolActions declares them).
interface IPoolActions {
    function token0() external view returns (address);
    function token1() external view returns (address);
    function mint(address recipient, int24 tickLower, int24 tickUpper, uint128 amount, bytes calldata data)
        external
        returns (uint256 amount0, uint256 amount1);
    function burn(int24 tickLower, int24 tickUpper, uint128 amount) external returns (uint256 amount0, uint256 amount1);
    function collect(address recipient, int24 tickLower, int24 tickUpper, uint128 amount0Requested, uint128 amount1Requested)
        external
        returns (uint128 amount0, uint128 amount1);
    function swap(address recipient, bool zeroForOne, int256 amountSpecified, uint160 sqrtPriceLimitX96, bytes calldata data)
        external
        returns (int256 amount0, int256 amount1);
    function flash(address recipient, uint256 amount0, uint256 amount1, bytes calldata data) external;
}

/// Drives a Uniswap v3 pool directly, for Sextant's differential tests of its pool maths: mints, burns, collects
/// and swaps with exact parameters (exact input or output, any price limit), paying from its own token balances.
/// Positions belong to the driver. Not for real funds: anyone can call it.
contract PoolDriver {
    function mint(address pool, int24 lower, int24 upper, uint128 amount) external returns (uint256, uint256) {
        return IPoolActions(pool).mint(address(this), lower, upper, amount, abi.encode(pool));
    }

    function burn(address pool, int24 lower, int24 upper, uint128 amount) external returns (uint256, uint256) {
        return IPoolActions(pool).burn(lower, upper, amount);
    }

    function collect(address pool, int24 lower, int24 upper, uint128 max0, uint128 max1)
        external
        returns (uint128, uint128)
    {
        return IPoolActions(pool).collect(address(this), lower, upper, max0, max1);
    }

    function swap(address pool, bool zeroForOne, int256 amountSpecified, uint160 limit)
        external
        returns (int256, int256)
    {
        return IPoolActions(pool).swap(address(this), zeroForOne, amountSpecified, limit, abi.encode(pool));
    }

    /// Borrows from the pool and repays the loan plus exactly the fee.
    function flash(address pool, uint256 amount0, uint256 amount1) external {
        IPoolActions(pool).flash(address(this), amount0, amount1, abi.encode(pool, amount0, amount1));
    }

    function uniswapV3FlashCallback(uint256 fee0, uint256 fee1, bytes calldata data) external {
        (address pool, uint256 amount0, uint256 amount1) = abi.decode(data, (address, uint256, uint256));
        require(msg.sender == pool, "not the pool");
        if (amount0 + fee0 > 0) require(IERC20(IPoolActions(pool).token0()).transfer(pool, amount0 + fee0), "repay 0");
        if (amount1 + fee1 > 0) require(IERC20(IPoolActions(pool).token1()).transfer(pool, amount1 + fee1), "repay 1");
    }

    function uniswapV3MintCallback(uint256 owed0, uint256 owed1, bytes calldata data) external {
        _pay(owed0, owed1, data);
    }

    function uniswapV3SwapCallback(int256 delta0, int256 delta1, bytes calldata data) external {
        _pay(delta0 > 0 ? uint256(delta0) : 0, delta1 > 0 ? uint256(delta1) : 0, data);
    }

    function _pay(uint256 amount0, uint256 amount1, bytes calldata data) private {
        address pool = abi.decode(data, (address));
        require(msg.sender == pool, "not the pool");
        if (amount0 > 0) require(IERC20(IPoolActions(pool).token0()).transfer(pool, amount0), "pay 0");
        if (amount1 > 0) require(IERC20(IPoolActions(pool).token1()).transfer(pool, amount1), "pay 1");
    }
}
