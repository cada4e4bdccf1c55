// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// ERC-7540 operator methods.
interface IERC7540Operator {
    event OperatorSet(address indexed controller, address indexed operator, bool approved);
    function setOperator(address operator, bool approved) external returns (bool);
    function isOperator(address controller, address operator) external view returns (bool);
}

/// ERC-7540 asynchronous deposits.
interface IERC7540Deposit {
    event DepositRequest(
        address indexed controller, address indexed owner, uint256 indexed requestId, address sender, uint256 assets
    );
    function requestDeposit(uint256 assets, address controller, address owner) external returns (uint256 requestId);
    function pendingDepositRequest(uint256 requestId, address controller) external view returns (uint256 assets);
    function claimableDepositRequest(uint256 requestId, address controller) external view returns (uint256 assets);
    function deposit(uint256 assets, address receiver, address controller) external returns (uint256 shares);
    function mint(uint256 shares, address receiver, address controller) external returns (uint256 assets);
}

/// ERC-7540 asynchronous redemptions.
interface IERC7540Redeem {
    event RedeemRequest(
        address indexed controller, address indexed owner, uint256 indexed requestId, address sender, uint256 shares
    );
    function requestRedeem(uint256 shares, address controller, address owner) external returns (uint256 requestId);
    function pendingRedeemRequest(uint256 requestId, address controller) external view returns (uint256 shares);
    function claimableRedeemRequest(uint256 requestId, address controller) external view returns (uint256 shares);
}

/// ERC-7575: the ERC-4626 vault surface without ERC-20, plus the share token (here the vault itself).
interface IERC7575 {
    function share() external view returns (address);
    function asset() external view returns (address);
    function totalAssets() external view returns (uint256);
    function convertToShares(uint256 assets) external view returns (uint256);
    function convertToAssets(uint256 shares) external view returns (uint256);
    function maxDeposit(address receiver) external view returns (uint256);
    function previewDeposit(uint256 assets) external view returns (uint256);
    function deposit(uint256 assets, address receiver) external returns (uint256);
    function maxMint(address receiver) external view returns (uint256);
    function previewMint(uint256 shares) external view returns (uint256);
    function mint(uint256 shares, address receiver) external returns (uint256);
    function maxWithdraw(address owner) external view returns (uint256);
    function previewWithdraw(uint256 assets) external view returns (uint256);
    function withdraw(uint256 assets, address receiver, address owner) external returns (uint256);
    function maxRedeem(address owner) external view returns (uint256);
    function previewRedeem(uint256 shares) external view returns (uint256);
    function redeem(uint256 shares, address receiver, address owner) external returns (uint256);
}

/// A Sextant strategy vault: an ERC-7540 vault whose assets are managed by a strategy in a Safe.
///
/// Investors request deposits (assets are held here) and redemptions (shares are held here). The curator settles
/// an epoch by posting the Safe's net asset value (NAV) for the vault: fees are charged first (management by time,
/// performance above the high-water mark, both as newly minted shares), then every pending deposit and redemption of
/// the epoch is priced at that one price; deposited assets go to the Safe, redeemed assets come from it (the Safe
/// approves this vault) and are set aside for their claims. Investors then claim shares (`deposit`/`mint`) or assets
/// (`redeem`/`withdraw`), each at the price of the epoch its request was settled in.
///
/// Rounding favours the vault everywhere; `10 ** DECIMALS_OFFSET` virtual shares and one virtual asset blunt the
/// first-depositor inflation attack (and a donation never moves the price: it is the posted NAV). Requests use
/// request id 0: each controller has one pending request of each kind, plus what it can claim. See docs/vault.md.
contract SextantVault is
    ERC20,
    ReentrancyGuardTransient,
    IERC165,
    IERC7540Operator,
    IERC7540Deposit,
    IERC7540Redeem
{
    using SafeERC20 for IERC20;
    using Math for uint256;

    uint8 public constant DECIMALS_OFFSET = 6;
    uint256 internal constant VIRTUAL_SHARES = 10 ** DECIMALS_OFFSET;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant YEAR = 365 days;
    /// High-water mark and prices are assets per share scaled by 1e18 (per 1e18 share base units).
    uint256 internal constant PRICE_SCALE = 1e18;
    uint256 public constant MAX_MANAGEMENT_FEE_BPS = 500;
    uint256 public constant MAX_PERFORMANCE_FEE_BPS = 5_000;

    IERC20 internal immutable _asset;
    uint8 internal immutable _decimals;
    /// The Safe whose strategy manages the vault's assets.
    address public immutable safe;

    address public owner;
    address public curator;
    address public guardian;
    address public feeRecipient;

    uint256 public managementFeeBps;
    uint256 public performanceFeeBps;
    /// Fee rates set by the owner, applied from the next settlement on (after fees at the old rates are charged).
    uint256 public nextManagementFeeBps;
    uint256 public nextPerformanceFeeBps;

    /// Most assets the vault takes: its NAV plus pending deposits.
    uint256 public depositCap;
    /// No new deposit requests while paused (redemptions and claims go on).
    bool public paused;
    /// No settlement while frozen (the guardian's brake on a wrong NAV).
    bool public frozen;

    /// The NAV as of the last settlement, with that settlement's deposits in and redemptions out.
    uint256 internal _totalAssets;
    /// The high-water mark: the highest price per share after fees at any settlement.
    uint256 public highWaterMark;
    uint256 public lastFeeAccrual;

    /// The open epoch; epochs before it are settled.
    uint256 public epoch;
    uint256 public pendingDepositAssets;
    uint256 public pendingRedeemShares;
    /// Assets set aside here for redemption claims.
    uint256 public reservedAssets;

    struct Settlement {
        uint256 depositAssets;
        uint256 depositShares;
        uint256 redeemShares;
        uint256 redeemAssets;
    }

    struct Request {
        uint256 epoch;
        uint256 amount;
    }

    struct Claim {
        uint256 assets;
        uint256 shares;
    }

    mapping(uint256 => Settlement) public settlements;
    mapping(address => Request) internal _depositRequests;
    mapping(address => Request) internal _redeemRequests;
    mapping(address => Claim) internal _claimableDeposits;
    mapping(address => Claim) internal _claimableRedeems;
    mapping(address => mapping(address => bool)) public override isOperator;

    event Deposit(address indexed sender, address indexed owner, uint256 assets, uint256 shares);
    event Withdraw(
        address indexed sender, address indexed receiver, address indexed owner, uint256 assets, uint256 shares
    );
    event Settled(
        uint256 indexed epoch,
        uint256 nav,
        uint256 feeShares,
        uint256 depositAssets,
        uint256 depositShares,
        uint256 redeemShares,
        uint256 redeemAssets,
        uint256 highWaterMark
    );
    event FeesScheduled(uint256 managementFeeBps, uint256 performanceFeeBps);
    event Seeded(uint256 nav, uint256 shares);
    event RoleSet(string role, address account);
    event DepositCapSet(uint256 cap);
    event Paused(bool paused);
    event Frozen(bool frozen);

    error Unauthorized();
    error ZeroAmount();
    error IsPaused();
    error IsFrozen();
    error CapExceeded(uint256 cap, uint256 wanted);
    error ExceedsClaimable(uint256 asked, uint256 claimable);
    error AsyncVault();
    error FeeTooHigh();
    error SafeCannotPay(uint256 needed, uint256 available);
    error InvalidAddress();
    error NotAllReceived(uint256 assets, uint256 received);

    modifier onlyOwner() {
        if (msg.sender != owner) revert Unauthorized();
        _;
    }

    constructor(
        IERC20 asset_,
        string memory name_,
        string memory symbol_,
        address safe_,
        address owner_,
        address curator_,
        address guardian_,
        address feeRecipient_
    ) ERC20(name_, symbol_) {
        if (
            address(asset_) == address(0) || safe_ == address(0) || owner_ == address(0) || curator_ == address(0)
                || guardian_ == address(0) || feeRecipient_ == address(0)
        ) revert InvalidAddress();
        _asset = asset_;
        _decimals = IERC20Metadata(address(asset_)).decimals() + DECIMALS_OFFSET;
        safe = safe_;
        owner = owner_;
        curator = curator_;
        guardian = guardian_;
        feeRecipient = feeRecipient_;
        depositCap = type(uint256).max;
        epoch = 1;
        lastFeeAccrual = block.timestamp;
        highWaterMark = _price(0, 0);
    }

    // ---------------------------------------------------------------- ERC-165, ERC-7575, ERC-20

    function supportsInterface(bytes4 id) public pure override returns (bool) {
        return id == type(IERC165).interfaceId || id == type(IERC7540Operator).interfaceId
            || id == type(IERC7540Deposit).interfaceId || id == type(IERC7540Redeem).interfaceId
            || id == type(IERC7575).interfaceId;
    }

    function share() external view returns (address) {
        return address(this);
    }

    function asset() external view returns (address) {
        return address(_asset);
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    // ---------------------------------------------------------------- ERC-4626 views

    function totalAssets() public view returns (uint256) {
        return _totalAssets;
    }

    function convertToShares(uint256 assets) public view returns (uint256) {
        return assets.mulDiv(totalSupply() + VIRTUAL_SHARES, _totalAssets + 1, Math.Rounding.Floor);
    }

    function convertToAssets(uint256 shares) public view returns (uint256) {
        return shares.mulDiv(_totalAssets + 1, totalSupply() + VIRTUAL_SHARES, Math.Rounding.Floor);
    }

    /// Claims only: what `controller` can claim now.
    function maxDeposit(address controller) external view returns (uint256) {
        return _claimDepositView(controller).assets;
    }

    function maxMint(address controller) external view returns (uint256) {
        return _claimDepositView(controller).shares;
    }

    function maxWithdraw(address controller) external view returns (uint256) {
        return _claimRedeemView(controller).assets;
    }

    function maxRedeem(address controller) external view returns (uint256) {
        return _claimRedeemView(controller).shares;
    }

    /// An asynchronous vault has no synchronous previews (ERC-7540): they revert.
    function previewDeposit(uint256) external pure returns (uint256) {
        revert AsyncVault();
    }

    function previewMint(uint256) external pure returns (uint256) {
        revert AsyncVault();
    }

    function previewWithdraw(uint256) external pure returns (uint256) {
        revert AsyncVault();
    }

    function previewRedeem(uint256) external pure returns (uint256) {
        revert AsyncVault();
    }

    // ---------------------------------------------------------------- operators

    function setOperator(address operator, bool approved) external returns (bool) {
        isOperator[msg.sender][operator] = approved;
        emit OperatorSet(msg.sender, operator, approved);
        return true;
    }

    /// Claims go to a real account: not the zero address, and not this vault (where they would be stranded).
    function _receiver(address receiver) internal view {
        if (receiver == address(0) || receiver == address(this)) revert InvalidAddress();
    }

    function _authorized(address controller) internal view {
        if (msg.sender != controller && !isOperator[controller][msg.sender]) revert Unauthorized();
    }

    // ---------------------------------------------------------------- requests

    function requestDeposit(uint256 assets, address controller, address owner_)
        external
        nonReentrant
        returns (uint256)
    {
        if (paused) revert IsPaused();
        if (assets == 0) revert ZeroAmount();
        if (controller == address(0)) revert InvalidAddress();
        if (msg.sender != owner_ && !isOperator[owner_][msg.sender]) revert Unauthorized();
        // no native asset is taken anywhere: only the token pulled here counts, measured by the balance it adds
        uint256 before = _asset.balanceOf(address(this));
        _asset.safeTransferFrom(owner_, address(this), assets);
        uint256 received = _asset.balanceOf(address(this)) - before;
        // ERC-7540: a request that cannot take all the assets reverts (fee-on-transfer tokens are not supported)
        if (received != assets) revert NotAllReceived(assets, received);
        uint256 wanted = _totalAssets + pendingDepositAssets + received;
        if (wanted > depositCap) revert CapExceeded(depositCap, wanted);
        _settleRequests(controller);
        Request storage r = _depositRequests[controller];
        r.epoch = epoch;
        r.amount += received;
        pendingDepositAssets += received;
        emit DepositRequest(controller, owner_, 0, msg.sender, received);
        return 0;
    }

    function requestRedeem(uint256 shares, address controller, address owner_)
        external
        nonReentrant
        returns (uint256)
    {
        if (shares == 0) revert ZeroAmount();
        if (controller == address(0)) revert InvalidAddress();
        if (msg.sender != owner_ && !isOperator[owner_][msg.sender]) {
            _spendAllowance(owner_, msg.sender, shares);
        }
        _transfer(owner_, address(this), shares);
        _settleRequests(controller);
        Request storage r = _redeemRequests[controller];
        r.epoch = epoch;
        r.amount += shares;
        pendingRedeemShares += shares;
        emit RedeemRequest(controller, owner_, 0, msg.sender, shares);
        return 0;
    }

    function pendingDepositRequest(uint256, address controller) external view returns (uint256) {
        Request memory r = _depositRequests[controller];
        return r.epoch == epoch ? r.amount : 0;
    }

    function pendingRedeemRequest(uint256, address controller) external view returns (uint256) {
        Request memory r = _redeemRequests[controller];
        return r.epoch == epoch ? r.amount : 0;
    }

    function claimableDepositRequest(uint256, address controller) external view returns (uint256) {
        return _claimDepositView(controller).assets;
    }

    function claimableRedeemRequest(uint256, address controller) external view returns (uint256) {
        return _claimRedeemView(controller).shares;
    }

    // ---------------------------------------------------------------- claims

    function deposit(uint256 assets, address receiver, address controller)
        public
        nonReentrant
        returns (uint256 shares)
    {
        _receiver(receiver);
        _authorized(controller);
        _settleRequests(controller);
        Claim storage c = _claimableDeposits[controller];
        if (assets == 0) revert ZeroAmount();
        if (assets > c.assets) revert ExceedsClaimable(assets, c.assets);
        shares = assets == c.assets ? c.shares : assets.mulDiv(c.shares, c.assets, Math.Rounding.Floor);
        c.assets -= assets;
        c.shares -= shares;
        _transfer(address(this), receiver, shares);
        emit Deposit(controller, receiver, assets, shares);
    }

    function deposit(uint256 assets, address receiver) external returns (uint256) {
        return deposit(assets, receiver, msg.sender);
    }

    function mint(uint256 shares, address receiver, address controller) public nonReentrant returns (uint256 assets) {
        _receiver(receiver);
        _authorized(controller);
        _settleRequests(controller);
        Claim storage c = _claimableDeposits[controller];
        if (shares == 0) revert ZeroAmount();
        if (shares > c.shares) revert ExceedsClaimable(shares, c.shares);
        assets = shares == c.shares ? c.assets : shares.mulDiv(c.assets, c.shares, Math.Rounding.Ceil);
        c.assets -= assets;
        c.shares -= shares;
        // a claim whose assets are used up has nothing left to claim: its rounding dust stays with the vault
        if (c.assets == 0) c.shares = 0;
        _transfer(address(this), receiver, shares);
        emit Deposit(controller, receiver, assets, shares);
    }

    function mint(uint256 shares, address receiver) external returns (uint256) {
        return mint(shares, receiver, msg.sender);
    }

    function redeem(uint256 shares, address receiver, address controller)
        external
        nonReentrant
        returns (uint256 assets)
    {
        _receiver(receiver);
        _authorized(controller);
        _settleRequests(controller);
        Claim storage c = _claimableRedeems[controller];
        if (shares == 0) revert ZeroAmount();
        if (shares > c.shares) revert ExceedsClaimable(shares, c.shares);
        assets = shares == c.shares ? c.assets : shares.mulDiv(c.assets, c.shares, Math.Rounding.Floor);
        c.assets -= assets;
        c.shares -= shares;
        reservedAssets -= assets;
        _asset.safeTransfer(receiver, assets);
        emit Withdraw(msg.sender, receiver, controller, assets, shares);
    }

    function withdraw(uint256 assets, address receiver, address controller)
        external
        nonReentrant
        returns (uint256 shares)
    {
        _receiver(receiver);
        _authorized(controller);
        _settleRequests(controller);
        Claim storage c = _claimableRedeems[controller];
        if (assets == 0) revert ZeroAmount();
        if (assets > c.assets) revert ExceedsClaimable(assets, c.assets);
        shares = assets == c.assets ? c.shares : assets.mulDiv(c.shares, c.assets, Math.Rounding.Ceil);
        c.assets -= assets;
        c.shares -= shares;
        // a claim whose shares are used up has nothing left to claim: its rounding dust stays reserved here
        if (c.shares == 0) c.assets = 0;
        reservedAssets -= assets;
        _asset.safeTransfer(receiver, assets);
        emit Withdraw(msg.sender, receiver, controller, assets, shares);
    }

    // ---------------------------------------------------------------- settlement

    /// Settles the open epoch at `nav`, the assets the Safe holds for the vault now (before this epoch's flows).
    function settle(uint256 nav) external nonReentrant {
        if (msg.sender != curator) revert Unauthorized();
        if (frozen) revert IsFrozen();
        // 0. Value no shareholder owns (a Safe that held assets before its vault, or what is left after every share
        //    was redeemed) becomes the Safe's own shares at the empty vault's price, not a gift to the next investors.
        if (totalSupply() == 0 && nav > 0) {
            uint256 seeded = nav.mulDiv(VIRTUAL_SHARES, _totalAssets + 1, Math.Rounding.Floor);
            lastFeeAccrual = block.timestamp;
            if (seeded > 0) _mint(safe, seeded);
            emit Seeded(nav, seeded);
        }
        // 1. fees at the rates in force since the last settlement, as shares
        uint256 feeShares = _chargeFees(nav);
        // 2. this epoch's flows, all at one price
        uint256 supply = totalSupply() + VIRTUAL_SHARES;
        uint256 depositAssets = pendingDepositAssets;
        uint256 redeemShares = pendingRedeemShares;
        uint256 depositShares = depositAssets.mulDiv(supply, nav + 1, Math.Rounding.Floor);
        uint256 redeemAssets = redeemShares.mulDiv(nav + 1, supply, Math.Rounding.Floor);
        // Redemptions beyond the deposits come from the Safe: say so plainly when it cannot pay them now.
        if (redeemAssets > depositAssets) {
            uint256 needed = redeemAssets - depositAssets;
            uint256 available = Math.min(_asset.balanceOf(safe), _asset.allowance(safe, address(this)));
            if (needed > available) revert SafeCannotPay(needed, available);
        }
        settlements[epoch] = Settlement(depositAssets, depositShares, redeemShares, redeemAssets);
        emit Settled(epoch, nav, feeShares, depositAssets, depositShares, redeemShares, redeemAssets, highWaterMark);
        epoch += 1;
        pendingDepositAssets = 0;
        pendingRedeemShares = 0;
        _totalAssets = nav + depositAssets - redeemAssets;
        reservedAssets += redeemAssets;
        if (depositShares > 0) _mint(address(this), depositShares);
        if (redeemShares > 0) _burn(address(this), redeemShares);
        // 3. tokens: deposits go to the Safe, redemptions come from it; only the difference moves
        if (depositAssets > redeemAssets) {
            _asset.safeTransfer(safe, depositAssets - redeemAssets);
        } else if (redeemAssets > depositAssets) {
            _asset.safeTransferFrom(safe, address(this), redeemAssets - depositAssets);
        }
        // 4. fee rates scheduled since take effect now
        managementFeeBps = nextManagementFeeBps;
        performanceFeeBps = nextPerformanceFeeBps;
    }

    /// Management fee on the NAV for the time since the last settlement, then the performance fee on the price's
    /// rise above the high-water mark; both minted to the fee recipient at the price net of them. The mark then
    /// rises to the price after fees (never falls).
    function _chargeFees(uint256 nav) internal returns (uint256 feeShares) {
        uint256 supply = totalSupply() + VIRTUAL_SHARES;
        uint256 elapsed = block.timestamp - lastFeeAccrual;
        lastFeeAccrual = block.timestamp;
        uint256 managementAssets = Math.min(nav, nav.mulDiv(managementFeeBps * elapsed, BPS * YEAR, Math.Rounding.Floor));
        uint256 price = (nav - managementAssets + 1).mulDiv(PRICE_SCALE, supply, Math.Rounding.Floor);
        uint256 performanceAssets;
        if (price > highWaterMark) {
            uint256 gain = (price - highWaterMark).mulDiv(supply, PRICE_SCALE, Math.Rounding.Floor);
            performanceAssets = gain.mulDiv(performanceFeeBps, BPS, Math.Rounding.Floor);
        }
        uint256 feeAssets = managementAssets + performanceAssets;
        if (feeAssets > 0) {
            feeShares = feeAssets.mulDiv(supply, nav - feeAssets + 1, Math.Rounding.Floor);
            if (feeShares > 0) _mint(feeRecipient, feeShares);
        }
        uint256 after_ = _price(nav, totalSupply());
        if (after_ > highWaterMark) highWaterMark = after_;
    }

    function _price(uint256 nav, uint256 supply) internal pure returns (uint256) {
        return (nav + 1).mulDiv(PRICE_SCALE, supply + VIRTUAL_SHARES, Math.Rounding.Floor);
    }

    /// Moves a controller's requests of settled epochs into what it can claim, at their epoch's price.
    function _settleRequests(address controller) internal {
        Request storage d = _depositRequests[controller];
        if (d.amount > 0 && d.epoch < epoch) {
            Claim memory c = _claimDepositView(controller);
            _claimableDeposits[controller] = c;
            delete _depositRequests[controller];
        }
        Request storage r = _redeemRequests[controller];
        if (r.amount > 0 && r.epoch < epoch) {
            Claim memory c = _claimRedeemView(controller);
            _claimableRedeems[controller] = c;
            delete _redeemRequests[controller];
        }
    }

    function _claimDepositView(address controller) internal view returns (Claim memory c) {
        c = _claimableDeposits[controller];
        Request memory d = _depositRequests[controller];
        if (d.amount > 0 && d.epoch < epoch) {
            Settlement memory s = settlements[d.epoch];
            c.assets += d.amount;
            c.shares += d.amount.mulDiv(s.depositShares, s.depositAssets, Math.Rounding.Floor);
        }
    }

    function _claimRedeemView(address controller) internal view returns (Claim memory c) {
        c = _claimableRedeems[controller];
        Request memory r = _redeemRequests[controller];
        if (r.amount > 0 && r.epoch < epoch) {
            Settlement memory s = settlements[r.epoch];
            c.shares += r.amount;
            c.assets += r.amount.mulDiv(s.redeemAssets, s.redeemShares, Math.Rounding.Floor);
        }
    }

    // ---------------------------------------------------------------- administration

    /// New fee rates, taking effect at the next settlement after that settlement charges the old ones.
    function setFees(uint256 managementBps, uint256 performanceBps) external onlyOwner {
        if (managementBps > MAX_MANAGEMENT_FEE_BPS || performanceBps > MAX_PERFORMANCE_FEE_BPS) revert FeeTooHigh();
        nextManagementFeeBps = managementBps;
        nextPerformanceFeeBps = performanceBps;
        emit FeesScheduled(managementBps, performanceBps);
    }

    function setDepositCap(uint256 cap) external onlyOwner {
        depositCap = cap;
        emit DepositCapSet(cap);
    }

    function setPaused(bool paused_) external {
        if (msg.sender != owner && msg.sender != guardian) revert Unauthorized();
        if (!paused_ && msg.sender != owner) revert Unauthorized();
        paused = paused_;
        emit Paused(paused_);
    }

    /// The guardian freezes settlement; only the owner thaws it.
    function setFrozen(bool frozen_) external {
        if (frozen_ ? (msg.sender != guardian && msg.sender != owner) : msg.sender != owner) revert Unauthorized();
        frozen = frozen_;
        emit Frozen(frozen_);
    }

    function setRole(string calldata role, address account) external onlyOwner {
        if (account == address(0)) revert InvalidAddress();
        bytes32 r = keccak256(bytes(role));
        if (r == keccak256("owner")) owner = account;
        else if (r == keccak256("curator")) curator = account;
        else if (r == keccak256("guardian")) guardian = account;
        else if (r == keccak256("feeRecipient")) feeRecipient = account;
        else revert Unauthorized();
        emit RoleSet(role, account);
    }
}
