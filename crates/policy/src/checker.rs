//! The off-chain checker: the module's `_authorize`, step for step, so a call the TransactionManager is about to
//! sign is judged exactly as the chain will judge it (same status, same info, same allowance spending).

use crate::condition::{Layout, Operator, ParamType, layout};
use crate::model::{Clearance, Policy};
use serde::{Deserialize, Serialize};
use sextant_chain::alloy::primitives::{Address, B256, U256, keccak256};
use std::collections::HashMap;

/// Why a call is refused: the module's `ConditionViolation` status (0-19 are Zodiac Roles v2's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Status {
    Ok = 0,
    DelegateCallNotAllowed = 1,
    TargetAddressNotAllowed = 2,
    FunctionNotAllowed = 3,
    SendNotAllowed = 4,
    OrViolation = 5,
    NorViolation = 6,
    ParameterNotAllowed = 7,
    ParameterLessThanAllowed = 8,
    ParameterGreaterThanAllowed = 9,
    ParameterNotAMatch = 10,
    NotEveryArrayElementPasses = 11,
    NoArrayElementPasses = 12,
    ParameterNotSubsetOfAllowed = 13,
    BitmaskOverflow = 14,
    BitmaskNotAllowed = 15,
    CustomConditionViolation = 16,
    AllowanceExceeded = 17,
    CallAllowanceExceeded = 18,
    EtherAllowanceExceeded = 19,
    CalldataOutOfBounds = 20,
    FunctionSignatureTooShort = 21,
}

impl Status {
    /// From the module's number.
    pub fn from_u8(n: u8) -> Option<Status> {
        use Status::*;
        [
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
            FunctionSignatureTooShort,
        ]
        .get(n as usize)
        .copied()
    }
}

/// Allowance spent by a call (one entry per spending, as the module tallies it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumption {
    /// The allowance.
    pub key: B256,
    /// Its balance before the call (refills counted).
    pub balance: u128,
    /// What this entry spends.
    pub consumed: u128,
    /// The refill timestamp after counting refills.
    pub timestamp: u64,
}

/// The checker's judgement of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Ok, or why the module would refuse it.
    pub status: Status,
    /// The module's `info`: the condition index, the target, the selector or the allowance key.
    pub info: B256,
    /// What the call would spend, if allowed.
    pub consumptions: Vec<Consumption>,
}

impl Verdict {
    /// Whether the module would make the call.
    pub fn allowed(&self) -> bool {
        self.status == Status::Ok
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AllowanceState {
    refill: u128,
    max_refill: u128,
    period: u64,
    balance: u128,
    timestamp: u64,
}

impl AllowanceState {
    /// Mirrors `SextantRoles._accrue`.
    fn accrue(&self, now: u64) -> (u128, u64) {
        if self.period == 0 || u128::from(now) < u128::from(self.timestamp) + u128::from(self.period) {
            return (self.balance, self.timestamp);
        }
        let periods = (now - self.timestamp) / self.period;
        let timestamp = self.timestamp + periods * self.period;
        let mut balance = self.balance;
        if balance < self.max_refill {
            let grown = U256::from(balance) + U256::from(self.refill) * U256::from(periods);
            balance = if grown < U256::from(self.max_refill) { grown.to::<u128>() } else { self.max_refill };
        }
        (balance, timestamp)
    }
}

#[derive(Debug, Clone)]
struct Node {
    parent: u8,
    param_type: ParamType,
    operator: Operator,
    comp: B256,
}

#[derive(Debug, Clone)]
struct Scoped {
    options: u8,
    tree: Option<(Vec<Node>, Layout)>,
}

#[derive(Debug, Clone)]
enum TargetScope {
    Any(u8),
    Functions(HashMap<[u8; 4], Scoped>),
}

/// A policy as the module stores it, with its allowances' state.
#[derive(Debug, Clone)]
pub struct Checker {
    safe: Address,
    targets: HashMap<Address, TargetScope>,
    allowances: HashMap<B256, AllowanceState>,
    ether_allowance: B256,
}

const ROOT: usize = usize::MAX;
const SEND: u8 = 1;
const DELEGATECALL: u8 = 2;

impl Checker {
    /// The policy as applied at time `applied_at` (allowances whose timestamp is 0 count from then).
    ///
    /// # Errors
    /// A condition tree the module would refuse.
    pub fn new(policy: &Policy, applied_at: u64) -> crate::Result<Checker> {
        policy.validate()?;
        let mut targets = HashMap::new();
        for t in &policy.targets {
            let scope = match &t.clearance {
                Clearance::Target { options } => TargetScope::Any(*options as u8),
                Clearance::Functions(fs) => {
                    let mut map = HashMap::new();
                    for f in fs {
                        let tree = match &f.condition {
                            None => None,
                            Some(c) => {
                                let flat = crate::condition::flatten(c)?;
                                let nodes: Vec<Node> = flat.iter().map(stored_node).collect();
                                let l = layout(&nodes.iter().map(|n| (n.parent, n.param_type)).collect::<Vec<_>>());
                                Some((nodes, l))
                            }
                        };
                        map.insert(f.selector.0, Scoped { options: f.options as u8, tree });
                    }
                    TargetScope::Functions(map)
                }
            };
            targets.insert(t.address, scope);
        }
        let allowances = policy
            .allowances
            .iter()
            .map(|a| {
                let state = AllowanceState {
                    refill: a.refill,
                    max_refill: if a.max_refill == 0 { u128::MAX } else { a.max_refill },
                    period: a.period_secs,
                    balance: a.balance,
                    timestamp: if a.timestamp == 0 { applied_at } else { a.timestamp },
                };
                (a.key, state)
            })
            .collect();
        Ok(Checker {
            safe: policy.safe,
            targets,
            allowances,
            ether_allowance: policy.ether_allowance.unwrap_or_default(),
        })
    }

    /// Sets an allowance to the module's stored values (its `allowances(key)` view), so checks spend from what the
    /// chain holds now.
    pub fn sync_allowance(
        &mut self,
        key: B256,
        refill: u128,
        max_refill: u128,
        period: u64,
        balance: u128,
        timestamp: u64,
    ) {
        self.allowances.insert(key, AllowanceState { refill, max_refill, period, balance, timestamp });
    }

    /// An allowance's balance at `now`, refills counted.
    pub fn allowance(&self, key: B256, now: u64) -> u128 {
        self.allowances.get(&key).map_or(0, |a| a.accrue(now).0)
    }

    /// Judges `to.call{value}(data)` (operation 0) or a delegatecall (1) at block time `now`, as `checkScope` and
    /// `execTransactionWithRole` would.
    pub fn check(&self, to: Address, value: U256, data: &[u8], operation: u8, now: u64) -> Verdict {
        let mut ctx = Ctx { value, now, used: Vec::new() };
        let (status, info) = self.authorize(to, data, operation, &mut ctx);
        let consumptions = if status == Status::Ok { ctx.used } else { Vec::new() };
        Verdict { status, info, consumptions }
    }

    /// Records an executed call's spending (`success` false: the call failed inside the Safe and the module put
    /// the balances back, refills counted).
    pub fn commit(&mut self, verdict: &Verdict, success: bool) {
        let mut totals: Vec<(B256, u128, u128, u64)> = Vec::new();
        for c in &verdict.consumptions {
            match totals.iter_mut().find(|t| t.0 == c.key) {
                Some(t) => t.2 += c.consumed,
                None => totals.push((c.key, c.balance, c.consumed, c.timestamp)),
            }
        }
        for (key, balance, total, timestamp) in totals {
            if let Some(a) = self.allowances.get_mut(&key) {
                a.timestamp = timestamp;
                a.balance = if success { balance - total } else { balance };
            } else {
                // The module keeps a zeroed allowance for unknown keys; nothing can be spent from it.
                debug_assert!(total == 0);
            }
        }
    }

    fn authorize(&self, to: Address, data: &[u8], operation: u8, ctx: &mut Ctx) -> (Status, B256) {
        let who = B256::left_padding_from(to.as_slice());
        let (options, scoped) = match self.targets.get(&to) {
            None => return (Status::TargetAddressNotAllowed, who),
            Some(TargetScope::Any(options)) => (*options, None),
            Some(TargetScope::Functions(fs)) => {
                if !data.is_empty() && data.len() < 4 {
                    return (Status::FunctionSignatureTooShort, who);
                }
                let selector: [u8; 4] = if data.is_empty() { [0; 4] } else { [data[0], data[1], data[2], data[3]] };
                match fs.get(&selector) {
                    None => return (Status::FunctionNotAllowed, B256::right_padding_from(&selector)),
                    Some(f) => (f.options, f.tree.as_ref()),
                }
            }
        };
        if operation == 1 && options & DELEGATECALL == 0 {
            return (Status::DelegateCallNotAllowed, who);
        }
        if ctx.value > U256::ZERO {
            if options & SEND == 0 {
                return (Status::SendNotAllowed, who);
            }
            let value = ctx.value;
            if !self.consume(ctx, self.ether_allowance, value) {
                return (Status::EtherAllowanceExceeded, self.ether_allowance);
            }
        }
        match scoped {
            None => (Status::Ok, B256::ZERO),
            Some((nodes, l)) => {
                Eval { checker: self, c: nodes, l, data, end: std::cell::Cell::new(data.len()) }.eval(0, ROOT, ctx)
            }
        }
    }

    /// Mirrors `SextantRoles._consume`.
    fn consume(&self, ctx: &mut Ctx, key: B256, amount: U256) -> bool {
        if key.is_zero() {
            return false;
        }
        let mut spent = 0u128;
        let mut seen: Option<(u128, u64)> = None;
        for u in ctx.used.iter().filter(|u| u.key == key) {
            seen = Some((u.balance, u.timestamp));
            spent += u.consumed;
        }
        let (balance, timestamp) = seen.unwrap_or_else(|| {
            let state = self.allowances.get(&key).copied().unwrap_or(AllowanceState {
                refill: 0,
                max_refill: 0,
                period: 0,
                balance: 0,
                timestamp: 0,
            });
            state.accrue(ctx.now)
        });
        if amount > U256::from(balance - spent) {
            return false;
        }
        ctx.used.push(Consumption { key, balance, consumed: amount.to::<u128>(), timestamp });
        true
    }
}

/// The stored form of a node: what `scopeFunction` writes.
fn stored_node(f: &crate::condition::FlatCondition) -> Node {
    let v = &f.comp_value;
    let mut comp = if v.len() == 32 { B256::from_slice(v) } else { B256::ZERO };
    if f.param_type == ParamType::Dynamic && f.operator == Operator::EqualTo {
        comp = keccak256(&v[32..]);
    }
    if f.param_type == ParamType::Calldata && v.len() == 4 {
        comp = B256::right_padding_from(v);
    }
    Node { parent: f.parent, param_type: f.param_type, operator: f.operator, comp }
}

struct Ctx {
    value: U256,
    now: u64,
    used: Vec<Consumption>,
}

struct Eval<'a> {
    checker: &'a Checker,
    c: &'a [Node],
    l: &'a Layout,
    data: &'a [u8],
    /// The end of the value being read: the call data, or the `bytes` of a nested call (mirrors `Eval.end`).
    end: std::cell::Cell<usize>,
}

fn idx(i: usize) -> B256 {
    B256::from(U256::from(i))
}

const OK: (Status, B256) = (Status::Ok, B256::ZERO);

impl Eval<'_> {
    fn word(&self, pos: usize) -> Option<U256> {
        let n = self.end.get();
        if pos > n || n - pos < 32 {
            return None;
        }
        Some(U256::from_be_slice(&self.data[pos..pos + 32]))
    }

    fn word_at(&self, pos: U256) -> Option<U256> {
        if pos > U256::from(self.end.get()) { None } else { self.word(pos.to::<usize>()) }
    }

    fn body_start(kind: ParamType, loc: usize) -> usize {
        if loc == ROOT {
            return 4;
        }
        match kind {
            ParamType::Tuple => loc,
            ParamType::Calldata => loc + 36,
            _ => loc + 32,
        }
    }

    fn locate(&self, i: usize, body: usize, head: usize) -> Option<usize> {
        let n = self.end.get();
        if !self.l.dynamic[i] {
            if head > n || n - head < self.l.head_size[i] {
                return None;
            }
            return Some(head);
        }
        let offset = self.word(head)?;
        if offset > U256::from(n) || body > n - offset.to::<usize>() {
            return None;
        }
        let loc = body + offset.to::<usize>();
        if n - loc < 32 {
            return None;
        }
        Some(loc)
    }

    fn eval(&self, i: usize, loc: usize, ctx: &mut Ctx) -> (Status, B256) {
        match self.c[i].operator {
            Operator::Pass => OK,
            Operator::And | Operator::Or | Operator::Nor => self.logical(i, loc, ctx),
            Operator::Matches => self.matches(i, loc, ctx),
            Operator::ArraySome | Operator::ArrayEvery => self.array(i, loc, ctx),
            _ => self.leaf(i, loc, ctx),
        }
    }

    fn leaf(&self, i: usize, loc: usize, ctx: &mut Ctx) -> (Status, B256) {
        let node = &self.c[i];
        let comp = node.comp;
        match node.operator {
            Operator::EtherWithinAllowance => {
                let value = ctx.value;
                return if self.checker.consume(ctx, comp, value) {
                    OK
                } else {
                    (Status::EtherAllowanceExceeded, idx(i))
                };
            }
            Operator::CallWithinAllowance => {
                return if self.checker.consume(ctx, comp, U256::from(1)) {
                    OK
                } else {
                    (Status::CallAllowanceExceeded, idx(i))
                };
            }
            _ => {}
        }
        let Some(w) = (if loc == ROOT { None } else { self.word(loc) }) else {
            return (Status::CalldataOutOfBounds, idx(i));
        };
        if node.param_type == ParamType::Dynamic {
            let n = self.end.get();
            if w > U256::from(n) {
                return (Status::CalldataOutOfBounds, idx(i));
            }
            let size = 32 + w.to::<usize>().div_ceil(32) * 32;
            if n - loc < size {
                return (Status::CalldataOutOfBounds, idx(i));
            }
            return if keccak256(&self.data[loc..loc + size]) == comp {
                OK
            } else {
                (Status::ParameterNotAllowed, idx(i))
            };
        }
        let c = U256::from_be_bytes(comp.0);
        let signed = |x: U256| sextant_chain::alloy::primitives::I256::from_raw(x);
        let pass = match node.operator {
            Operator::EqualToAvatar => w == U256::from_be_slice(self.checker.safe.as_slice()),
            Operator::EqualTo => w == c,
            Operator::GreaterThan => w > c,
            Operator::LessThan => w < c,
            Operator::SignedIntGreaterThan => signed(w) > signed(c),
            Operator::SignedIntLessThan => signed(w) < signed(c),
            // WithinAllowance: the only leaf operator left after the tree check.
            _ => {
                return if self.checker.consume(ctx, comp, w) { OK } else { (Status::AllowanceExceeded, idx(i)) };
            }
        };
        if pass {
            return OK;
        }
        let status = match node.operator {
            Operator::GreaterThan | Operator::SignedIntGreaterThan => Status::ParameterLessThanAllowed,
            Operator::LessThan | Operator::SignedIntLessThan => Status::ParameterGreaterThanAllowed,
            _ => Status::ParameterNotAllowed,
        };
        (status, idx(i))
    }

    fn logical(&self, i: usize, loc: usize, ctx: &mut Ctx) -> (Status, B256) {
        let op = self.c[i].operator;
        let first = self.l.first_child[i];
        for k in first..first + self.l.child_count[i] {
            let mark = ctx.used.len();
            let (s, info) = self.eval(k, loc, ctx);
            if s == Status::CalldataOutOfBounds {
                return (s, info);
            }
            if op == Operator::And {
                if s != Status::Ok {
                    return (s, info);
                }
            } else if s == Status::Ok {
                if op == Operator::Or {
                    return OK;
                }
                ctx.used.truncate(mark);
                return (Status::NorViolation, idx(i));
            } else {
                ctx.used.truncate(mark);
            }
        }
        if op == Operator::Or { (Status::OrViolation, idx(i)) } else { OK }
    }

    fn matches(&self, i: usize, loc: usize, ctx: &mut Ctx) -> (Status, B256) {
        let kind = self.l.kind[i];
        let n = self.end.get();
        let saved = n;
        if loc != ROOT && kind != ParamType::Tuple {
            let Some(len) = self.word(loc) else { return (Status::CalldataOutOfBounds, idx(i)) };
            if len > U256::from(n) || U256::from(n - loc - 32) < len {
                return (Status::CalldataOutOfBounds, idx(i));
            }
            if kind == ParamType::Calldata {
                if len < U256::from(4) {
                    return (Status::CalldataOutOfBounds, idx(i));
                }
                let selector = self.c[i].comp;
                let w = self.word_at(U256::from(loc + 32)).unwrap_or_default();
                let head = B256::right_padding_from(&w.to_be_bytes::<32>()[..4]);
                if !selector.is_zero() && head != selector {
                    return (Status::FunctionNotAllowed, idx(i));
                }
            }
            if kind == ParamType::Array && len != U256::from(self.l.child_count[i]) {
                return (Status::ParameterNotAMatch, idx(i));
            }
            // A nested call's (or encoded value's) parameters lie inside its bytes.
            if kind != ParamType::Array {
                self.end.set(loc + 32 + len.to::<usize>());
            }
        }
        let result = self.match_children(i, loc, ctx);
        self.end.set(saved);
        result
    }

    fn match_children(&self, i: usize, loc: usize, ctx: &mut Ctx) -> (Status, B256) {
        let kind = self.l.kind[i];
        let body = Self::body_start(kind, loc);
        let mut head = body;
        let first = self.l.first_child[i];
        for k in first..first + self.l.child_count[i] {
            let mut at = 0;
            if self.l.kind[k] != ParamType::None {
                match self.locate(k, body, head) {
                    Some(x) => at = x,
                    None => return (Status::CalldataOutOfBounds, idx(k)),
                }
                head += self.l.head_size[k];
            }
            let (s, info) = self.eval(k, at, ctx);
            if s != Status::Ok {
                return (s, info);
            }
        }
        OK
    }

    fn array(&self, i: usize, loc: usize, ctx: &mut Ctx) -> (Status, B256) {
        let n = self.end.get();
        let len = match self.word(loc) {
            Some(len) if len <= U256::from(n) => len.to::<usize>(),
            _ => return (Status::CalldataOutOfBounds, idx(i)),
        };
        let every = self.c[i].operator == Operator::ArrayEvery;
        let child = self.l.first_child[i];
        let body = loc + 32;
        for j in 0..len {
            let mark = ctx.used.len();
            let (s, info) = match self.locate(child, body, body + j * self.l.head_size[child]) {
                None => (Status::CalldataOutOfBounds, idx(child)),
                Some(at) => self.eval(child, at, ctx),
            };
            if s == Status::CalldataOutOfBounds {
                return (s, info);
            }
            if every && s != Status::Ok {
                return (Status::NotEveryArrayElementPasses, info);
            }
            if !every {
                if s == Status::Ok {
                    return OK;
                }
                ctx.used.truncate(mark);
            }
        }
        if every { OK } else { (Status::NoArrayElementPasses, idx(i)) }
    }
}
