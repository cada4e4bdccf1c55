// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {SextantVault} from "./SextantVault.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// One account of the vault property test: forwards the driver's calls, so each actor is its own msg.sender.
contract VaultActor {
    address internal immutable driver;

    constructor() {
        driver = msg.sender;
    }

    function exec(address target, bytes calldata data) external returns (bool ok, bytes memory ret) {
        require(msg.sender == driver, "driver only");
        (ok, ret) = target.call(data);
    }
}

/// Drives `SextantVault` through many operations in one transaction for the property test
/// (crates/chain/tests/vault_property.rs): each operation is a call by one of its actors; after each it emits the
/// call's outcome and the vault's totals, so the test compares every step with the Rust model without a
/// transaction per step.
contract VaultDriver {
    struct Op {
        uint8 who;
        address target;
        bytes data;
    }

    event Step(uint256 indexed i, bool ok, bytes ret, uint256[10] state);

    VaultActor[] public actors;
    SextantVault public vault;
    IERC20 public asset;

    constructor(uint256 n) {
        for (uint256 i = 0; i < n; i++) {
            actors.push(new VaultActor());
        }
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function setVault(SextantVault vault_) external {
        require(address(vault) == address(0), "set once");
        vault = vault_;
        asset = IERC20(vault_.asset());
    }

    function run(Op[] calldata ops, uint256 first) external {
        for (uint256 i = 0; i < ops.length; i++) {
            // ok and ret are the actor's call to the target: its return data, or its revert data
            (bool ok, bytes memory ret) = actors[ops[i].who].exec(ops[i].target, ops[i].data);
            emit Step(first + i, ok, ret, state());
        }
    }

    function state() public view returns (uint256[10] memory s) {
        SextantVault v = vault;
        s[0] = v.totalSupply();
        s[1] = v.totalAssets();
        s[2] = v.reservedAssets();
        s[3] = v.pendingDepositAssets();
        s[4] = v.pendingRedeemShares();
        s[5] = v.highWaterMark();
        s[6] = asset.balanceOf(address(v));
        s[7] = v.balanceOf(address(v));
        s[8] = v.epoch();
        s[9] = v.lastFeeAccrual();
    }
}
