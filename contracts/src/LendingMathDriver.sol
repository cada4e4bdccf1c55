// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {WadRayMath} from "@aave/core-v3/contracts/protocol/libraries/math/WadRayMath.sol";
import {PercentageMath} from "@aave/core-v3/contracts/protocol/libraries/math/PercentageMath.sol";
import {MathUtils} from "@aave/core-v3/contracts/protocol/libraries/math/MathUtils.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// Exposes Aave v3's maths libraries, compiled from the npm package's own sources, for the differential test of
/// Sextant's `protocols::aave_v3`. It also stands in for the reserve token when the real
/// DefaultReserveInterestRateStrategy asks for the aToken's balance: `balanceOf(a)` is the address read as a
/// number, so a test picks any balance below 2^160 by choosing the aToken address.
contract LendingMathDriver {
    function wadMul(uint256 a, uint256 b) external pure returns (uint256) {
        return WadRayMath.wadMul(a, b);
    }

    function wadDiv(uint256 a, uint256 b) external pure returns (uint256) {
        return WadRayMath.wadDiv(a, b);
    }

    function rayMul(uint256 a, uint256 b) external pure returns (uint256) {
        return WadRayMath.rayMul(a, b);
    }

    function rayDiv(uint256 a, uint256 b) external pure returns (uint256) {
        return WadRayMath.rayDiv(a, b);
    }

    function rayToWad(uint256 a) external pure returns (uint256) {
        return WadRayMath.rayToWad(a);
    }

    function wadToRay(uint256 a) external pure returns (uint256) {
        return WadRayMath.wadToRay(a);
    }

    function percentMul(uint256 v, uint256 p) external pure returns (uint256) {
        return PercentageMath.percentMul(v, p);
    }

    function percentDiv(uint256 v, uint256 p) external pure returns (uint256) {
        return PercentageMath.percentDiv(v, p);
    }

    /// Linear interest over `elapsed` seconds ending now.
    function linearInterest(uint256 rate, uint256 elapsed) external view returns (uint256) {
        return MathUtils.calculateLinearInterest(rate, uint40(block.timestamp - elapsed));
    }

    /// Compounded interest over `elapsed` seconds ending now.
    function compoundedInterest(uint256 rate, uint256 elapsed) external view returns (uint256) {
        return MathUtils.calculateCompoundedInterest(rate, uint40(block.timestamp - elapsed));
    }

    function balanceOf(address who) external pure returns (uint256) {
        return uint256(uint160(who));
    }
}

/// An OpenZeppelin 5 ERC-4626 vault with a chosen decimals offset, over a mintable asset, for the differential test
/// of `protocols::erc4626`. `gain` moves assets in without minting shares (a strategy's profit or a donation).
contract Vault4626 is ERC4626 {
    uint8 private immutable offset;

    constructor(IERC20 asset_, uint8 offset_) ERC20("Sextant test vault", "stv") ERC4626(asset_) {
        offset = offset_;
    }

    function _decimalsOffset() internal view override returns (uint8) {
        return offset;
    }
}
