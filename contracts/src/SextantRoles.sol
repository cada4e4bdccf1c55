// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.26;

/// The part of a Safe (1.3 / 1.4) a module drives.
interface ISafeModuleCalls {
    function execTransactionFromModuleReturnData(address to, uint256 value, bytes calldata data, uint8 operation)
        external
        returns (bool success, bytes memory returnData);
}

/// One node of a condition tree, flattened in breadth-first order (the root is node 0 and its own parent).
/// `paramType` and `operator` use Zodiac Roles v2's numbering, so a policy has one encoding for both modules.
struct ConditionFlat {
    uint8 parent;
    uint8 paramType;
    uint8 operator;
    bytes compValue;
}

/// Sextant's permissions module: a Safe enables it, and from then on the Safe's role members (deployment keys) may
/// make calls from the Safe, but only inside their role's scope. The Safe is the owner: every configuration call
/// comes from a Safe transaction, and takes effect for the next call made through the module.
///
/// A role allows targets; a target allows any function (with its execution options) or a set of selectors; a
/// selector may carry a tree of conditions on its ABI-decoded parameters (equal to, equal to the Safe, one of (an Or
/// of equalities), less than, greater than, within a refilling allowance, nested with And / Or / Nor, into tuples,
/// arrays and calldata carried as bytes). Native value needs the Send option and the role's ether allowance;
/// delegatecall needs the DelegateCall option. A call outside the scope reverts with an error that says which
/// check failed; the entry point has the shape of Zodiac Roles v2's.
contract SextantRoles {
    // ---- parameter types (Zodiac Roles v2 numbering)
    uint8 internal constant T_NONE = 0;
    uint8 internal constant T_STATIC = 1;
    uint8 internal constant T_DYNAMIC = 2;
    uint8 internal constant T_TUPLE = 3;
    uint8 internal constant T_ARRAY = 4;
    uint8 internal constant T_CALLDATA = 5;
    uint8 internal constant T_ABI_ENCODED = 6;

    // ---- operators (Zodiac Roles v2 numbering; the ones not listed are refused when scoping)
    uint8 internal constant OP_PASS = 0;
    uint8 internal constant OP_AND = 1;
    uint8 internal constant OP_OR = 2;
    uint8 internal constant OP_NOR = 3;
    uint8 internal constant OP_MATCHES = 5;
    uint8 internal constant OP_ARRAY_SOME = 6;
    uint8 internal constant OP_ARRAY_EVERY = 7;
    uint8 internal constant OP_EQUAL_TO_AVATAR = 15;
    uint8 internal constant OP_EQUAL_TO = 16;
    uint8 internal constant OP_GREATER_THAN = 17;
    uint8 internal constant OP_LESS_THAN = 18;
    uint8 internal constant OP_SIGNED_GREATER_THAN = 19;
    uint8 internal constant OP_SIGNED_LESS_THAN = 20;
    uint8 internal constant OP_WITHIN_ALLOWANCE = 28;
    uint8 internal constant OP_ETHER_WITHIN_ALLOWANCE = 29;
    uint8 internal constant OP_CALL_WITHIN_ALLOWANCE = 30;

    // ---- execution options and target clearance
    uint8 internal constant OPT_SEND = 1;
    uint8 internal constant OPT_DELEGATECALL = 2;
    uint8 internal constant CLEARANCE_NONE = 0;
    uint8 internal constant CLEARANCE_TARGET = 1;
    uint8 internal constant CLEARANCE_FUNCTION = 2;

    /// Why a call was refused (the `status` of `ConditionViolation`).
    /// Values 0-19 are Zodiac Roles v2's; 20 and 21 are Sextant's (Zodiac reverts with errors of those names).
    enum Status {
        Ok,
        DelegateCallNotAllowed,
        TargetAddressNotAllowed,
        FunctionNotAllowed,
        SendNotAllowed,
        OrViolation,
        NorViolation,
        ParameterNotAllowed,
        ParameterLessThanAllowed,
        ParameterGreaterThanAllowed,
        ParameterNotAMatch,
        NotEveryArrayElementPasses,
        NoArrayElementPasses,
        ParameterNotSubsetOfAllowed,
        BitmaskOverflow,
        BitmaskNotAllowed,
        CustomConditionViolation,
        AllowanceExceeded,
        CallAllowanceExceeded,
        EtherAllowanceExceeded,
        CalldataOutOfBounds,
        FunctionSignatureTooShort
    }

    struct TargetAddress {
        uint8 clearance;
        uint8 options;
    }

    struct FunctionScope {
        bool allowed;
        bool scoped;
        uint8 options;
    }

    /// A stored condition node: `compValue` is the 32-byte comparison word, or the keccak of a longer value.
    struct Condition {
        uint8 parent;
        uint8 paramType;
        uint8 operator;
        bytes32 compValue;
    }

    struct Allowance {
        uint128 refill;
        uint128 maxRefill;
        uint64 period;
        uint128 balance;
        uint64 timestamp;
    }

    struct Role {
        mapping(address => bool) members;
        mapping(address => TargetAddress) targets;
        bytes32 etherAllowance;
    }

    /// An allowance spent by the call being checked.
    struct Consumption {
        bytes32 key;
        uint128 balance;
        uint128 consumed;
        uint64 timestamp;
    }

    /// The layout of a condition tree, derived once per check.
    struct Layout {
        uint8[] kind;
        bool[] dynamic;
        uint256[] headSize;
        uint256[] firstChild;
        uint256[] childCount;
    }

    struct Context {
        uint256 value;
        Consumption[] used;
        uint256 usedCount;
    }

    /// One check of a call against a condition tree: the tree, its layout, a copy of the call data, the spending.
    struct Eval {
        Condition[] c;
        Layout l;
        bytes data;
        Context ctx;
        uint256 end;
    }

    /// The location that stands for the checked call's own calldata.
    uint256 internal constant ROOT = type(uint256).max;

    /// The Safe: the module's owner and the account its calls are made from.
    address public immutable avatar;

    mapping(bytes32 => Role) internal roles;
    mapping(bytes32 => FunctionScope) internal functions;
    mapping(bytes32 => Condition[]) internal conditions;
    mapping(bytes32 => Allowance) public allowances;

    event AssignRoles(address indexed member, bytes32[] roleKeys, bool[] memberOf);
    event AllowTarget(bytes32 indexed roleKey, address indexed targetAddress, uint8 options);
    event ScopeTarget(bytes32 indexed roleKey, address indexed targetAddress);
    event RevokeTarget(bytes32 indexed roleKey, address indexed targetAddress);
    event AllowFunction(bytes32 indexed roleKey, address indexed targetAddress, bytes4 selector, uint8 options);
    event ScopeFunction(
        bytes32 indexed roleKey, address indexed targetAddress, bytes4 selector, ConditionFlat[] conditions, uint8 options
    );
    event RevokeFunction(bytes32 indexed roleKey, address indexed targetAddress, bytes4 selector);
    event SetAllowance(
        bytes32 indexed allowanceKey, uint128 balance, uint128 maxRefill, uint128 refill, uint64 period, uint64 timestamp
    );
    event SetEtherAllowance(bytes32 indexed roleKey, bytes32 allowanceKey);
    event ConsumeAllowance(bytes32 indexed allowanceKey, uint128 consumed, uint128 newBalance);
    event ExecutedWithRole(
        bytes32 indexed roleKey,
        address indexed member,
        address indexed to,
        uint256 value,
        bytes4 selector,
        uint8 operation,
        bool success
    );

    /// The caller is not the Safe.
    error OnlyAvatar(address caller);
    /// The caller is not a member of the role.
    error NotAuthorized(address caller, bytes32 roleKey);
    /// A configuration argument is wrong.
    error InvalidConfiguration(string reason);
    /// Node `index` of a condition tree is not well formed; `reason` says why.
    error UnsuitableConditions(uint256 index, string reason);
    /// The call is outside the role's scope: `status` is the check that failed, `info` the condition index (or the
    /// target address for target checks).
    error ConditionViolation(Status status, bytes32 info);
    /// The Safe's call failed and the member asked to revert; `returnData` is what the call returned.
    error ModuleTransactionFailed(bytes returnData);
    /// Operation is neither call (0) nor delegatecall (1).
    error InvalidOperation(uint8 operation);
    /// A call through the module was made while another was running.
    error Reentrancy();

    /// One call through the module at a time: a call made from the Safe cannot re-enter and spend allowances the
    /// outer call may put back.
    modifier nonReentrant() {
        _enter();
        _;
        _leave();
    }

    function _enter() private {
        bool busy;
        assembly ("memory-safe") {
            busy := tload(0)
        }
        if (busy) revert Reentrancy();
        assembly ("memory-safe") {
            tstore(0, 1)
        }
    }

    function _leave() private {
        assembly ("memory-safe") {
            tstore(0, 0)
        }
    }

    modifier onlyAvatar() {
        if (msg.sender != avatar) revert OnlyAvatar(msg.sender);
        _;
    }

    constructor(address safe) {
        if (safe == address(0)) revert InvalidConfiguration("the Safe is the zero address");
        avatar = safe;
    }

    // ------------------------------------------------------------------------------------------------ configuration

    /// Applies several configuration calls in one Safe transaction.
    function multicall(bytes[] calldata calls) external onlyAvatar {
        for (uint256 i = 0; i < calls.length; i++) {
            (bool ok, bytes memory ret) = address(this).delegatecall(calls[i]);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 32), mload(ret))
                }
            }
        }
    }

    function assignRoles(address member, bytes32[] calldata roleKeys, bool[] calldata memberOf) external onlyAvatar {
        if (roleKeys.length != memberOf.length) revert InvalidConfiguration("roleKeys and memberOf differ in length");
        for (uint256 i = 0; i < roleKeys.length; i++) {
            roles[roleKeys[i]].members[member] = memberOf[i];
        }
        emit AssignRoles(member, roleKeys, memberOf);
    }

    function allowTarget(bytes32 roleKey, address targetAddress, uint8 options) external onlyAvatar {
        _checkTarget(targetAddress);
        if (options > 3) revert InvalidConfiguration("options above 3");
        roles[roleKey].targets[targetAddress] = TargetAddress(CLEARANCE_TARGET, options);
        emit AllowTarget(roleKey, targetAddress, options);
    }

    function scopeTarget(bytes32 roleKey, address targetAddress) external onlyAvatar {
        _checkTarget(targetAddress);
        roles[roleKey].targets[targetAddress] = TargetAddress(CLEARANCE_FUNCTION, 0);
        emit ScopeTarget(roleKey, targetAddress);
    }

    /// The Safe and the module itself are never targets: through them a member could reconfigure its own scope or
    /// the Safe's owners and modules.
    function _checkTarget(address targetAddress) internal view {
        if (targetAddress == avatar || targetAddress == address(this)) {
            revert InvalidConfiguration("the Safe and the module are never targets");
        }
    }

    function revokeTarget(bytes32 roleKey, address targetAddress) external onlyAvatar {
        roles[roleKey].targets[targetAddress] = TargetAddress(CLEARANCE_NONE, 0);
        emit RevokeTarget(roleKey, targetAddress);
    }

    function allowFunction(bytes32 roleKey, address targetAddress, bytes4 selector, uint8 options)
        external
        onlyAvatar
    {
        _checkTarget(targetAddress);
        if (options > 3) revert InvalidConfiguration("options above 3");
        bytes32 key = _functionKey(roleKey, targetAddress, selector);
        functions[key] = FunctionScope(true, false, options);
        delete conditions[key];
        emit AllowFunction(roleKey, targetAddress, selector, options);
    }

    function scopeFunction(
        bytes32 roleKey,
        address targetAddress,
        bytes4 selector,
        ConditionFlat[] calldata conditionTree,
        uint8 options
    ) external onlyAvatar {
        if (options > 3) revert InvalidConfiguration("options above 3");
        _checkTarget(targetAddress);
        _checkTree(conditionTree);
        bytes32 key = _functionKey(roleKey, targetAddress, selector);
        functions[key] = FunctionScope(true, true, options);
        delete conditions[key];
        Condition[] storage stored = conditions[key];
        for (uint256 i = 0; i < conditionTree.length; i++) {
            ConditionFlat calldata c = conditionTree[i];
            bytes32 comp = c.compValue.length == 32 ? bytes32(c.compValue) : bytes32(0);
            // Equality with bytes: `abi.encode(value)` is given; its offset word dropped, the rest is hashed.
            if (c.paramType == T_DYNAMIC && c.operator == OP_EQUAL_TO) comp = keccak256(c.compValue[32:]);
            if (c.paramType == T_CALLDATA && c.compValue.length == 4) comp = bytes32(bytes4(c.compValue));
            stored.push(Condition(c.parent, c.paramType, c.operator, comp));
        }
        emit ScopeFunction(roleKey, targetAddress, selector, conditionTree, options);
    }

    function revokeFunction(bytes32 roleKey, address targetAddress, bytes4 selector) external onlyAvatar {
        bytes32 key = _functionKey(roleKey, targetAddress, selector);
        delete functions[key];
        delete conditions[key];
        emit RevokeFunction(roleKey, targetAddress, selector);
    }

    /// Sets an allowance: `balance` now, and every `period` seconds after `timestamp` it grows by `refill`, up to
    /// `maxRefill` (a balance set above `maxRefill` is spent down before refills start). `period` 0: no refills;
    /// `maxRefill` 0: no cap; `timestamp` 0: now (as Zodiac Roles v2 reads them).
    function setAllowance(
        bytes32 key,
        uint128 balance,
        uint128 maxRefill,
        uint128 refill,
        uint64 period,
        uint64 timestamp
    ) external onlyAvatar {
        uint64 start = timestamp == 0 ? uint64(block.timestamp) : timestamp;
        uint128 cap = maxRefill == 0 ? type(uint128).max : maxRefill;
        allowances[key] = Allowance(refill, cap, period, balance, start);
        emit SetAllowance(key, balance, cap, refill, period, start);
    }

    /// The allowance the role's native value is spent from (zero: the role sends no value).
    function setEtherAllowance(bytes32 roleKey, bytes32 allowanceKey) external onlyAvatar {
        roles[roleKey].etherAllowance = allowanceKey;
        emit SetEtherAllowance(roleKey, allowanceKey);
    }

    // ------------------------------------------------------------------------------------------------------ views

    function isMember(bytes32 roleKey, address member) external view returns (bool) {
        return roles[roleKey].members[member];
    }

    function target(bytes32 roleKey, address targetAddress) external view returns (uint8 clearance, uint8 options) {
        TargetAddress memory t = roles[roleKey].targets[targetAddress];
        return (t.clearance, t.options);
    }

    function functionScope(bytes32 roleKey, address targetAddress, bytes4 selector)
        external
        view
        returns (bool allowed, bool scoped, uint8 options, uint256 conditionCount)
    {
        bytes32 key = _functionKey(roleKey, targetAddress, selector);
        FunctionScope memory f = functions[key];
        return (f.allowed, f.scoped, f.options, conditions[key].length);
    }

    function etherAllowance(bytes32 roleKey) external view returns (bytes32) {
        return roles[roleKey].etherAllowance;
    }

    /// An allowance's balance as of now (refills included) and the time its refills count from.
    function accruedAllowance(bytes32 key) external view returns (uint128 balance, uint64 timestamp) {
        return _accrue(allowances[key]);
    }

    /// Whether `roleKey`'s scope allows the call now (membership aside): Ok, or the reason it would be refused.
    function checkScope(address to, uint256 value, bytes calldata data, uint8 operation, bytes32 roleKey)
        external
        view
        returns (Status status, bytes32 info)
    {
        Context memory ctx;
        (status, info) = _authorize(roleKey, to, value, data, operation, ctx);
    }

    // -------------------------------------------------------------------------------------------------- execution

    /// Makes `to.call{value}(data)` (or a delegatecall) from the Safe if the caller's role allows it.
    function execTransactionWithRole(
        address to,
        uint256 value,
        bytes calldata data,
        uint8 operation,
        bytes32 roleKey,
        bool shouldRevert
    ) external nonReentrant returns (bool success) {
        if (!roles[roleKey].members[msg.sender]) revert NotAuthorized(msg.sender, roleKey);
        if (operation > 1) revert InvalidOperation(operation);
        Context memory ctx;
        (Status status, bytes32 info) = _authorize(roleKey, to, value, data, operation, ctx);
        if (status != Status.Ok) revert ConditionViolation(status, info);
        _spend(ctx, true);
        bytes memory ret;
        (success, ret) = ISafeModuleCalls(avatar).execTransactionFromModuleReturnData(to, value, data, operation);
        if (!success) {
            if (shouldRevert) revert ModuleTransactionFailed(ret);
            _spend(ctx, false);
        }
        emit ExecutedWithRole(roleKey, msg.sender, to, value, data.length >= 4 ? bytes4(data[:4]) : bytes4(0), operation, success);
    }

    /// Writes the call's allowance spending, or, after a failed call, the balances as they were (refills counted:
    /// the same balance from the later timestamp).
    function _spend(Context memory ctx, bool commit) internal {
        for (uint256 i = 0; i < ctx.usedCount; i++) {
            Consumption memory c = ctx.used[i];
            bool first = true;
            uint256 total = 0;
            for (uint256 j = 0; j < ctx.usedCount; j++) {
                if (ctx.used[j].key != c.key) continue;
                if (j < i) first = false;
                total += ctx.used[j].consumed;
            }
            if (!first) continue;
            Allowance storage a = allowances[c.key];
            a.timestamp = c.timestamp;
            if (commit) {
                a.balance = c.balance - uint128(total);
                emit ConsumeAllowance(c.key, uint128(total), c.balance - uint128(total));
            } else {
                a.balance = c.balance;
            }
        }
    }

    function _authorize(
        bytes32 roleKey,
        address to,
        uint256 value,
        bytes calldata data,
        uint8 operation,
        Context memory ctx
    ) internal view returns (Status, bytes32) {
        ctx.used = new Consumption[](8);
        ctx.value = value;
        (Status status, bytes32 info, bytes32 key, uint8 options, bool scoped) = _clearance(roleKey, to, data);
        if (status == Status.Ok) (status, info) = _executionOptions(roleKey, to, options, operation, ctx);
        if (status != Status.Ok || !scoped) return (status, info);
        return _evalStored(key, data, ctx);
    }

    /// Delegatecall needs the DelegateCall option; native value needs Send and the role's ether allowance.
    function _executionOptions(bytes32 roleKey, address to, uint8 options, uint8 operation, Context memory ctx)
        internal
        view
        returns (Status, bytes32)
    {
        bytes32 who = bytes32(uint256(uint160(to)));
        if (operation == 1 && options & OPT_DELEGATECALL == 0) return (Status.DelegateCallNotAllowed, who);
        if (ctx.value > 0) {
            if (options & OPT_SEND == 0) return (Status.SendNotAllowed, who);
            bytes32 etherKey = roles[roleKey].etherAllowance;
            if (!_consume(ctx, etherKey, ctx.value)) return (Status.EtherAllowanceExceeded, etherKey);
        }
        return (Status.Ok, 0);
    }

    /// The target and function checks: the execution options that apply, and the key of the function's conditions
    /// if it is scoped.
    function _clearance(bytes32 roleKey, address to, bytes calldata data)
        internal
        view
        returns (Status, bytes32, bytes32 key, uint8 options, bool scoped)
    {
        TargetAddress memory t = roles[roleKey].targets[to];
        if (t.clearance == CLEARANCE_NONE) {
            return (Status.TargetAddressNotAllowed, bytes32(uint256(uint160(to))), 0, 0, false);
        }
        if (t.clearance == CLEARANCE_TARGET) return (Status.Ok, 0, 0, t.options, false);
        // No data is the selector 0 (a plain transfer); one to three bytes are no selector at all.
        if (data.length > 0 && data.length < 4) {
            return (Status.FunctionSignatureTooShort, bytes32(uint256(uint160(to))), 0, 0, false);
        }
        bytes4 selector = data.length == 0 ? bytes4(0) : bytes4(data[:4]);
        key = _functionKey(roleKey, to, selector);
        FunctionScope memory f = functions[key];
        if (!f.allowed) return (Status.FunctionNotAllowed, bytes32(selector), 0, 0, false);
        return (Status.Ok, 0, key, f.options, f.scoped);
    }

    // ------------------------------------------------------------------------------------------------- conditions

    function _functionKey(bytes32 roleKey, address targetAddress, bytes4 selector) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(roleKey, targetAddress, selector));
    }

    /// Checks a condition tree is one the evaluator understands (so a scoped function can never be unusable or
    /// ambiguous): breadth-first order, known operators on the types they apply to, consistent siblings.
    function _checkTree(ConditionFlat[] calldata c) internal pure {
        uint256 n = c.length;
        if (n == 0 || n > 255) revert UnsuitableConditions(0, "a tree has 1 to 255 nodes");
        if (c[0].parent != 0) revert UnsuitableConditions(0, "the root is node 0, its own parent");
        for (uint256 i = 1; i < n; i++) {
            if (c[i].parent >= i) revert UnsuitableConditions(i, "a parent comes before its children");
            if (c[i].parent < c[i - 1].parent) revert UnsuitableConditions(i, "nodes are in breadth-first order");
        }
        Condition[] memory tree = new Condition[](n);
        for (uint256 i = 0; i < n; i++) {
            tree[i] = Condition(c[i].parent, c[i].paramType, c[i].operator, 0);
        }
        Layout memory layout = _layout(tree);
        if (layout.kind[0] != T_CALLDATA) revert UnsuitableConditions(0, "the root describes calldata");
        for (uint256 i = 0; i < n; i++) {
            _checkNode(c[i], i, layout);
        }
    }

    function _checkNode(ConditionFlat calldata c, uint256 i, Layout memory layout) internal pure {
        uint8 op = c.operator;
        uint8 ty = c.paramType;
        uint256 kids = layout.childCount[i];
        uint256 len = c.compValue.length;
        if (ty > T_ABI_ENCODED) revert UnsuitableConditions(i, "unknown parameter type");
        if ((ty == T_STATIC || ty == T_DYNAMIC) && kids != 0) revert UnsuitableConditions(i, "Static/Dynamic: leaves");
        if (op == OP_AND || op == OP_OR || op == OP_NOR) {
            if (ty != T_NONE || kids == 0 || len != 0) revert UnsuitableConditions(i, "And/Or/Nor: None, with children");
            _checkSiblings(i, layout);
        } else if (op == OP_PASS) {
            if (ty == T_NONE || ty == T_TUPLE || kids != 0 || len != 0) {
                revert UnsuitableConditions(i, "Pass: a leaf, not None or Tuple");
            }
        } else if (op == OP_MATCHES) {
            if (ty != T_TUPLE && ty != T_ARRAY && ty != T_CALLDATA && ty != T_ABI_ENCODED) {
                revert UnsuitableConditions(i, "Matches: on Tuple, Array, Calldata or AbiEncoded");
            }
            if (kids == 0) revert UnsuitableConditions(i, "Matches: with children");
            if (len != 0 && !(ty == T_CALLDATA && len == 4)) {
                revert UnsuitableConditions(i, "Matches: no comparison value (a selector for Calldata)");
            }
            if (len == 4 && bytes4(c.compValue) == bytes4(0)) revert UnsuitableConditions(i, "a selector is not zero");
            if (ty == T_ARRAY) _checkSiblings(i, layout);
        } else if (op == OP_ARRAY_SOME || op == OP_ARRAY_EVERY) {
            if (ty != T_ARRAY || kids != 1 || len != 0) {
                revert UnsuitableConditions(i, "ArraySome/ArrayEvery: Array, one child");
            }
        } else if (op == OP_EQUAL_TO_AVATAR) {
            if (ty != T_STATIC || len != 0) revert UnsuitableConditions(i, "EqualToAvatar: Static leaf");
        } else if (op == OP_EQUAL_TO) {
            if (!(ty == T_STATIC && len == 32) && !(ty == T_DYNAMIC && len >= 64 && len % 32 == 0)) {
                revert UnsuitableConditions(i, "EqualTo: abi.encode of a Static word or of Dynamic bytes");
            }
        } else if (
            op == OP_GREATER_THAN || op == OP_LESS_THAN || op == OP_SIGNED_GREATER_THAN || op == OP_SIGNED_LESS_THAN
                || op == OP_WITHIN_ALLOWANCE
        ) {
            if (ty != T_STATIC || len != 32) revert UnsuitableConditions(i, "a Static leaf with a 32-byte word");
        } else if (op == OP_ETHER_WITHIN_ALLOWANCE || op == OP_CALL_WITHIN_ALLOWANCE) {
            if (ty != T_NONE || kids != 0 || len != 32) {
                revert UnsuitableConditions(i, "Ether/CallWithinAllowance: a None leaf with a key");
            }
        } else {
            revert UnsuitableConditions(i, "operator not supported");
        }
        if (i > 0 && layout.kind[i] == T_NONE && op != OP_ETHER_WITHIN_ALLOWANCE && op != OP_CALL_WITHIN_ALLOWANCE) {
            if (op != OP_AND && op != OP_OR && op != OP_NOR) revert UnsuitableConditions(i, "a node without a type");
        }
    }

    /// The children of a logical node (or the elements of an array) all have one layout.
    function _checkSiblings(uint256 i, Layout memory l) internal pure {
        uint256 first = l.firstChild[i];
        for (uint256 k = first + 1; k < first + l.childCount[i]; k++) {
            if (l.kind[k] != l.kind[first] || l.headSize[k] != l.headSize[first] || l.dynamic[k] != l.dynamic[first]) {
                revert UnsuitableConditions(k, "siblings under a logical node or an array have one type");
            }
        }
    }

    /// Types, head sizes and children of every node. Children follow their parents (breadth-first), so one pass
    /// from the last node up resolves a logical node to its children's type and sizes tuples from their fields.
    function _layout(Condition[] memory c) internal pure returns (Layout memory l) {
        uint256 n = c.length;
        l.kind = new uint8[](n);
        l.dynamic = new bool[](n);
        l.headSize = new uint256[](n);
        l.firstChild = new uint256[](n);
        l.childCount = new uint256[](n);
        for (uint256 i = 1; i < n; i++) {
            uint256 p = c[i].parent;
            if (l.childCount[p] == 0) l.firstChild[p] = i;
            l.childCount[p]++;
        }
        for (uint256 j = n; j > 0; j--) {
            uint256 i = j - 1;
            uint8 ty = c[i].paramType;
            uint256 first = l.firstChild[i];
            uint256 kids = l.childCount[i];
            if (ty == T_NONE) {
                // A logical node is what its children are; an allowance leaf takes no parameter.
                if (kids > 0) {
                    l.kind[i] = l.kind[first];
                    l.dynamic[i] = l.dynamic[first];
                    l.headSize[i] = l.headSize[first];
                }
            } else if (ty == T_STATIC) {
                l.kind[i] = T_STATIC;
                l.headSize[i] = 32;
            } else if (ty == T_TUPLE) {
                l.kind[i] = T_TUPLE;
                bool dyn = false;
                uint256 size = 0;
                for (uint256 k = first; k < first + kids; k++) {
                    if (l.kind[k] == T_NONE) continue;
                    dyn = dyn || l.dynamic[k];
                    size += l.headSize[k];
                }
                l.dynamic[i] = dyn;
                l.headSize[i] = dyn ? 32 : size;
            } else {
                l.kind[i] = ty;
                l.dynamic[i] = true;
                l.headSize[i] = 32;
            }
        }
    }

    function _evalStored(bytes32 key, bytes calldata data, Context memory ctx) internal view returns (Status, bytes32) {
        Eval memory e;
        e.c = conditions[key];
        e.l = _layout(e.c);
        e.data = data;
        e.ctx = ctx;
        e.end = data.length;
        return _eval(e, 0, ROOT);
    }

    /// A 32-byte word of the call data; false past the end of the value being read (the call data, or the `bytes`
    /// holding a nested call).
    function _word(Eval memory e, uint256 pos) internal pure returns (bool ok, uint256 w) {
        if (pos > e.end || e.end - pos < 32) return (false, 0);
        bytes memory data = e.data;
        assembly ("memory-safe") {
            w := mload(add(add(data, 32), pos))
        }
        return (true, w);
    }

    /// Where the fields of a tuple-like value start: a tuple's own position, past the length word of an array, past
    /// the length and selector of calldata; the call's own calldata (`ROOT`) starts after its selector.
    function _bodyStart(uint8 kind, uint256 loc) internal pure returns (uint256) {
        if (loc == ROOT) return 4;
        if (kind == T_TUPLE) return loc;
        if (kind == T_CALLDATA) return loc + 36;
        return loc + 32;
    }

    /// The location of node `i`'s value, whose head sits at `head` in a body starting at `body`: the head itself
    /// for static values, where the head's offset points for dynamic ones.
    function _locate(Eval memory e, uint256 i, uint256 body, uint256 head) internal pure returns (bool, uint256) {
        uint256 n = e.end;
        if (!e.l.dynamic[i]) {
            if (head > n || n - head < e.l.headSize[i]) return (false, 0);
            return (true, head);
        }
        (bool ok, uint256 offset) = _word(e, head);
        if (!ok || offset > n || body > n - offset) return (false, 0);
        uint256 loc = body + offset;
        // Every dynamic value starts with a word (a length, or a tuple's first head).
        if (n - loc < 32) return (false, 0);
        return (true, loc);
    }

    function _eval(Eval memory e, uint256 i, uint256 loc) internal view returns (Status, bytes32) {
        uint8 op = e.c[i].operator;
        if (op == OP_PASS) return (Status.Ok, 0);
        if (op == OP_AND || op == OP_OR || op == OP_NOR) return _evalLogical(e, i, loc);
        if (op == OP_MATCHES) return _evalMatches(e, i, loc);
        if (op == OP_ARRAY_SOME || op == OP_ARRAY_EVERY) return _evalArray(e, i, loc);
        return _evalLeaf(e, i, loc);
    }

    function _evalLeaf(Eval memory e, uint256 i, uint256 loc) internal view returns (Status, bytes32) {
        uint8 op = e.c[i].operator;
        bytes32 idx = bytes32(i);
        bytes32 comp = e.c[i].compValue;
        if (op == OP_ETHER_WITHIN_ALLOWANCE) {
            if (!_consume(e.ctx, comp, e.ctx.value)) return (Status.EtherAllowanceExceeded, idx);
            return (Status.Ok, 0);
        }
        if (op == OP_CALL_WITHIN_ALLOWANCE) {
            if (!_consume(e.ctx, comp, 1)) return (Status.CallAllowanceExceeded, idx);
            return (Status.Ok, 0);
        }
        (bool ok, uint256 w) = _word(e, loc);
        if (!ok) return (Status.CalldataOutOfBounds, idx);
        if (e.c[i].paramType == T_DYNAMIC) {
            // EqualTo on bytes: the keccak of the length word and the padded content, as `abi.encode` lays it out.
            if (w > e.end) return (Status.CalldataOutOfBounds, idx);
            uint256 size = 32 + ((w + 31) / 32) * 32;
            if (e.end - loc < size) return (Status.CalldataOutOfBounds, idx);
            bytes memory d = e.data;
            bytes32 h;
            assembly ("memory-safe") {
                h := keccak256(add(add(d, 32), loc), size)
            }
            return h == comp ? (Status.Ok, bytes32(0)) : (Status.ParameterNotAllowed, idx);
        }
        if (op == OP_EQUAL_TO_AVATAR) {
            return w == uint256(uint160(avatar)) ? (Status.Ok, bytes32(0)) : (Status.ParameterNotAllowed, idx);
        }
        if (op == OP_EQUAL_TO) return w == uint256(comp) ? (Status.Ok, bytes32(0)) : (Status.ParameterNotAllowed, idx);
        if (op == OP_GREATER_THAN) {
            return w > uint256(comp) ? (Status.Ok, bytes32(0)) : (Status.ParameterLessThanAllowed, idx);
        }
        if (op == OP_LESS_THAN) {
            return w < uint256(comp) ? (Status.Ok, bytes32(0)) : (Status.ParameterGreaterThanAllowed, idx);
        }
        if (op == OP_SIGNED_GREATER_THAN) {
            return int256(w) > int256(uint256(comp)) ? (Status.Ok, bytes32(0)) : (Status.ParameterLessThanAllowed, idx);
        }
        if (op == OP_SIGNED_LESS_THAN) {
            return int256(w) < int256(uint256(comp))
                ? (Status.Ok, bytes32(0))
                : (Status.ParameterGreaterThanAllowed, idx);
        }
        // OP_WITHIN_ALLOWANCE: the only operator left after _checkTree.
        if (!_consume(e.ctx, comp, w)) return (Status.AllowanceExceeded, idx);
        return (Status.Ok, 0);
    }

    function _evalLogical(Eval memory e, uint256 i, uint256 loc) internal view returns (Status, bytes32) {
        uint8 op = e.c[i].operator;
        uint256 first = e.l.firstChild[i];
        uint256 end = first + e.l.childCount[i];
        for (uint256 k = first; k < end; k++) {
            uint256 mark = e.ctx.usedCount;
            (Status s, bytes32 info) = _eval(e, k, loc);
            if (s == Status.CalldataOutOfBounds) return (s, info);
            if (op == OP_AND) {
                if (s != Status.Ok) return (s, info);
            } else if (s == Status.Ok) {
                if (op == OP_OR) return (Status.Ok, 0);
                e.ctx.usedCount = mark;
                return (Status.NorViolation, bytes32(i));
            } else {
                // A branch that failed spends nothing.
                e.ctx.usedCount = mark;
            }
        }
        if (op == OP_OR) return (Status.OrViolation, bytes32(i));
        return (Status.Ok, 0);
    }

    function _evalMatches(Eval memory e, uint256 i, uint256 loc) internal view returns (Status, bytes32) {
        uint8 kind = e.l.kind[i];
        uint256 saved = e.end;
        if (loc != ROOT && kind != T_TUPLE) {
            (bool okLen, uint256 len) = _word(e, loc);
            if (!okLen || len > e.end || e.end - loc - 32 < len) {
                return (Status.CalldataOutOfBounds, bytes32(i));
            }
            if (kind == T_CALLDATA) {
                if (len < 4) return (Status.CalldataOutOfBounds, bytes32(i));
                bytes32 selector = e.c[i].compValue;
                (, uint256 w) = _word(e, loc + 32);
                if (selector != 0 && bytes32(bytes4(bytes32(w))) != selector) {
                    return (Status.FunctionNotAllowed, bytes32(i));
                }
            }
            if (kind == T_ARRAY && len != e.l.childCount[i]) return (Status.ParameterNotAMatch, bytes32(i));
            // A nested call's (or encoded value's) parameters lie inside its bytes.
            if (kind != T_ARRAY) e.end = loc + 32 + len;
        }
        (Status s, bytes32 info) = _matchChildren(e, i, loc);
        e.end = saved;
        return (s, info);
    }

    /// Each child of a Matches against the value at its position.
    function _matchChildren(Eval memory e, uint256 i, uint256 loc) internal view returns (Status, bytes32) {
        uint8 kind = e.l.kind[i];
        uint256 body = _bodyStart(kind, loc);
        uint256 head = body;
        uint256 first = e.l.firstChild[i];
        uint256 end = first + e.l.childCount[i];
        for (uint256 k = first; k < end; k++) {
            uint256 at = 0;
            if (e.l.kind[k] != T_NONE) {
                bool ok;
                (ok, at) = _locate(e, k, body, head);
                if (!ok) return (Status.CalldataOutOfBounds, bytes32(k));
                head += e.l.headSize[k];
            }
            (Status s, bytes32 info) = _eval(e, k, at);
            if (s != Status.Ok) return (s, info);
        }
        return (Status.Ok, 0);
    }

    function _evalArray(Eval memory e, uint256 i, uint256 loc) internal view returns (Status, bytes32) {
        (bool okLen, uint256 len) = _word(e, loc);
        if (!okLen || len > e.end) return (Status.CalldataOutOfBounds, bytes32(i));
        bool every = e.c[i].operator == OP_ARRAY_EVERY;
        for (uint256 j = 0; j < len; j++) {
            uint256 mark = e.ctx.usedCount;
            (Status s, bytes32 info) = _evalElement(e, e.l.firstChild[i], loc + 32, j);
            if (s == Status.CalldataOutOfBounds) return (s, info);
            if (every && s != Status.Ok) return (Status.NotEveryArrayElementPasses, info);
            if (!every) {
                if (s == Status.Ok) return (Status.Ok, 0);
                e.ctx.usedCount = mark;
            }
        }
        return every ? (Status.Ok, bytes32(0)) : (Status.NoArrayElementPasses, bytes32(i));
    }

    /// Element `j` of an array whose elements start at `body`, against node `child`.
    function _evalElement(Eval memory e, uint256 child, uint256 body, uint256 j) internal view returns (Status, bytes32) {
        (bool ok, uint256 at) = _locate(e, child, body, body + j * e.l.headSize[child]);
        if (!ok) return (Status.CalldataOutOfBounds, bytes32(child));
        return _eval(e, child, at);
    }

    // ------------------------------------------------------------------------------------------------- allowances

    function _accrue(Allowance memory a) internal view returns (uint128 balance, uint64 timestamp) {
        balance = a.balance;
        timestamp = a.timestamp;
        if (a.period == 0 || block.timestamp < uint256(a.timestamp) + a.period) return (balance, timestamp);
        uint256 periods = (block.timestamp - a.timestamp) / a.period;
        timestamp = uint64(uint256(a.timestamp) + periods * a.period);
        if (balance < a.maxRefill) {
            uint256 grown = uint256(balance) + uint256(a.refill) * periods;
            balance = grown < a.maxRefill ? uint128(grown) : a.maxRefill;
        }
    }

    /// Spends `amount` of allowance `key` in this call's tally; false when the allowance (after refills and what
    /// this call already spent of it) is short. Every spending is its own entry, so a failed branch of an Or is
    /// undone by forgetting the entries it added.
    function _consume(Context memory ctx, bytes32 key, uint256 amount) internal view returns (bool) {
        if (key == 0) return false;
        uint256 spent = 0;
        bool seen = false;
        uint128 balance;
        uint64 timestamp;
        for (uint256 i = 0; i < ctx.usedCount; i++) {
            Consumption memory u = ctx.used[i];
            if (u.key == key) {
                (seen, balance, timestamp) = (true, u.balance, u.timestamp);
                spent += u.consumed;
            }
        }
        if (!seen) (balance, timestamp) = _accrue(allowances[key]);
        if (amount > balance - spent) return false;
        if (ctx.usedCount == ctx.used.length) {
            Consumption[] memory grown = new Consumption[](ctx.used.length * 2 + 1);
            for (uint256 i = 0; i < ctx.usedCount; i++) {
                grown[i] = ctx.used[i];
            }
            ctx.used = grown;
        }
        ctx.used[ctx.usedCount] = Consumption(key, balance, uint128(amount), timestamp);
        ctx.usedCount++;
        return true;
    }
}
