//! Condition trees on ABI-decoded call parameters, in Zodiac Roles v2's numbering: nested for people, flattened
//! breadth-first for the chain, with the module's own well-formedness rules and layout.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sextant_chain::alloy::primitives::{Address, B256, Bytes, U256};

/// How a parameter is laid out in ABI encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParamType {
    /// No parameter: logical nodes (typed by their children) and call-level allowance leaves.
    None = 0,
    /// One 32-byte word.
    Static = 1,
    /// `bytes` or `string`.
    Dynamic = 2,
    /// A struct; its children are the fields.
    Tuple = 3,
    /// A dynamic array; its children describe the elements.
    Array = 4,
    /// `bytes` holding a call: a selector, then ABI-encoded parameters (the children).
    Calldata = 5,
    /// `bytes` holding ABI-encoded values, no selector.
    AbiEncoded = 6,
}

/// What a node checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    /// Anything (the node only describes layout).
    Pass = 0,
    /// Every child passes.
    And = 1,
    /// At least one child passes.
    Or = 2,
    /// No child passes.
    Nor = 3,
    /// Each child passes on the field (or element) at its position.
    Matches = 5,
    /// Some element of the array passes the child.
    ArraySome = 6,
    /// Every element of the array passes the child.
    ArrayEvery = 7,
    /// The word is the Safe's address.
    EqualToAvatar = 15,
    /// The value equals the comparison value.
    EqualTo = 16,
    /// The word, unsigned, is greater.
    GreaterThan = 17,
    /// The word, unsigned, is less.
    LessThan = 18,
    /// The word, signed, is greater.
    SignedIntGreaterThan = 19,
    /// The word, signed, is less.
    SignedIntLessThan = 20,
    /// The word is spent from an allowance (the comparison value is its key).
    WithinAllowance = 28,
    /// The call's native value is spent from an allowance.
    EtherWithinAllowance = 29,
    /// One call is spent from an allowance.
    CallWithinAllowance = 30,
    /// Zodiac Roles v2 only (Sextant's module refuses it): masked bytes of a value equal expected bytes.
    Bitmask = 21,
}

impl ParamType {
    /// From the module's number.
    pub fn from_u8(n: u8) -> Option<ParamType> {
        use ParamType::*;
        [None, Static, Dynamic, Tuple, Array, Calldata, AbiEncoded].into_iter().find(|t| *t as u8 == n)
    }
}

impl Operator {
    /// From the module's number.
    pub fn from_u8(n: u8) -> Option<Operator> {
        use Operator::*;
        [
            Pass,
            And,
            Or,
            Nor,
            Matches,
            ArraySome,
            ArrayEvery,
            EqualToAvatar,
            EqualTo,
            GreaterThan,
            LessThan,
            SignedIntGreaterThan,
            SignedIntLessThan,
            WithinAllowance,
            EtherWithinAllowance,
            CallWithinAllowance,
            Bitmask,
        ]
        .into_iter()
        .find(|o| *o as u8 == n)
    }
}

/// A condition tree node. Comparison values are given as the module takes them: `abi.encode(value)` for
/// equalities and bounds, the allowance key for allowances, a 4-byte selector (or nothing) for a call's Matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// Layout of the value.
    pub param_type: ParamType,
    /// The check.
    pub operator: Operator,
    /// Comparison value.
    #[serde(default, skip_serializing_if = "no_bytes")]
    pub comp_value: Bytes,
    /// Children: fields, elements or alternatives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Condition>,
}

fn no_bytes(b: &Bytes) -> bool {
    b.is_empty()
}

fn word(x: U256) -> Bytes {
    Bytes::from(x.to_be_bytes::<32>().to_vec())
}

fn address_word(a: Address) -> Bytes {
    word(U256::from_be_slice(a.as_slice()))
}

impl Condition {
    fn node(param_type: ParamType, operator: Operator, comp_value: Bytes, children: Vec<Condition>) -> Self {
        Condition { param_type, operator, comp_value, children }
    }

    /// A call's parameters, position by position (trailing ones may be left out).
    pub fn calldata(params: Vec<Condition>) -> Self {
        Self::node(ParamType::Calldata, Operator::Matches, Bytes::new(), params)
    }

    /// Calldata carried as `bytes` (e.g. in a multicall) whose selector must be `selector`.
    pub fn inner_call(selector: [u8; 4], params: Vec<Condition>) -> Self {
        Self::node(ParamType::Calldata, Operator::Matches, Bytes::from(selector.to_vec()), params)
    }

    /// A struct's fields, position by position.
    pub fn tuple(fields: Vec<Condition>) -> Self {
        Self::node(ParamType::Tuple, Operator::Matches, Bytes::new(), fields)
    }

    /// Any word.
    pub fn any() -> Self {
        Self::node(ParamType::Static, Operator::Pass, Bytes::new(), vec![])
    }

    /// Any value of a dynamic type (`bytes`, an array, nested calldata).
    pub fn any_of_type(param_type: ParamType) -> Self {
        Self::node(param_type, Operator::Pass, Bytes::new(), vec![])
    }

    /// The word is the Safe.
    pub fn avatar() -> Self {
        Self::node(ParamType::Static, Operator::EqualToAvatar, Bytes::new(), vec![])
    }

    /// The word equals `x`.
    pub fn eq(x: U256) -> Self {
        Self::node(ParamType::Static, Operator::EqualTo, word(x), vec![])
    }

    /// The word is the address `a`.
    pub fn eq_address(a: Address) -> Self {
        Self::node(ParamType::Static, Operator::EqualTo, address_word(a), vec![])
    }

    /// The word is one of the addresses (a single one is a plain equality).
    pub fn one_of_addresses(addresses: &[Address]) -> Self {
        if addresses.len() == 1 {
            return Self::eq_address(addresses[0]);
        }
        let children = addresses.iter().map(|a| Self::eq_address(*a)).collect();
        Self::node(ParamType::None, Operator::Or, Bytes::new(), children)
    }

    /// The word is less than `x`.
    pub fn lt(x: U256) -> Self {
        Self::node(ParamType::Static, Operator::LessThan, word(x), vec![])
    }

    /// The word is greater than `x`.
    pub fn gt(x: U256) -> Self {
        Self::node(ParamType::Static, Operator::GreaterThan, word(x), vec![])
    }

    /// The word is spent from allowance `key`.
    pub fn within_allowance(key: B256) -> Self {
        Self::node(ParamType::Static, Operator::WithinAllowance, Bytes::from(key.to_vec()), vec![])
    }

    /// One call spent from allowance `key` (a child of a call's Matches).
    pub fn call_within_allowance(key: B256) -> Self {
        Self::node(ParamType::None, Operator::CallWithinAllowance, Bytes::from(key.to_vec()), vec![])
    }

    /// Every element of an array passes `element`.
    pub fn every(element: Condition) -> Self {
        Self::node(ParamType::Array, Operator::ArrayEvery, Bytes::new(), vec![element])
    }

    /// All of the conditions (on one value).
    pub fn and(children: Vec<Condition>) -> Self {
        Self::node(ParamType::None, Operator::And, Bytes::new(), children)
    }

    /// Any of the conditions (on one value).
    pub fn or(children: Vec<Condition>) -> Self {
        Self::node(ParamType::None, Operator::Or, Bytes::new(), children)
    }
}

/// A node of a flattened tree, as the module's `scopeFunction` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlatCondition {
    /// Index of the parent (the root is its own parent, 0).
    pub parent: u8,
    /// Layout.
    pub param_type: ParamType,
    /// Check.
    pub operator: Operator,
    /// Comparison value, as given.
    pub comp_value: Bytes,
}

/// The tree in breadth-first order, checked against the module's rules.
///
/// # Errors
/// A tree the module would refuse (`UnsuitableConditions`), with the node's index and the reason.
pub fn flatten(root: &Condition) -> Result<Vec<FlatCondition>> {
    let out = flatten_unchecked(root)?;
    check_tree(&out)?;
    Ok(out)
}

/// Breadth-first order without the module's rules (for Zodiac's operators).
pub(crate) fn flatten_unchecked(root: &Condition) -> Result<Vec<FlatCondition>> {
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([(root, 0usize)]);
    while let Some((node, parent)) = queue.pop_front() {
        let index = out.len();
        let parent = u8::try_from(parent)
            .map_err(|_| Error::UnsuitableConditions { index, reason: "a tree has 1 to 255 nodes" })?;
        out.push(FlatCondition {
            parent,
            param_type: node.param_type,
            operator: node.operator,
            comp_value: node.comp_value.clone(),
        });
        for child in &node.children {
            queue.push_back((child, index));
        }
    }
    Ok(out)
}

/// Types, head sizes and children of each node of a flat tree (mirrors `SextantRoles._layout`).
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub kind: Vec<ParamType>,
    pub dynamic: Vec<bool>,
    pub head_size: Vec<usize>,
    pub first_child: Vec<usize>,
    pub child_count: Vec<usize>,
}

pub(crate) fn layout(c: &[(u8, ParamType)]) -> Layout {
    let n = c.len();
    let mut l = Layout {
        kind: vec![ParamType::None; n],
        dynamic: vec![false; n],
        head_size: vec![0; n],
        first_child: vec![0; n],
        child_count: vec![0; n],
    };
    for (i, &(p, _)) in c.iter().enumerate().skip(1) {
        let p = p as usize;
        if l.child_count[p] == 0 {
            l.first_child[p] = i;
        }
        l.child_count[p] += 1;
    }
    for i in (0..n).rev() {
        let (first, kids) = (l.first_child[i], l.child_count[i]);
        match c[i].1 {
            ParamType::None => {
                if kids > 0 {
                    l.kind[i] = l.kind[first];
                    l.dynamic[i] = l.dynamic[first];
                    l.head_size[i] = l.head_size[first];
                }
            }
            ParamType::Static => {
                l.kind[i] = ParamType::Static;
                l.head_size[i] = 32;
            }
            ParamType::Tuple => {
                l.kind[i] = ParamType::Tuple;
                let fields = (first..first + kids).filter(|&k| l.kind[k] != ParamType::None);
                let (dynamic, size) = fields.fold((false, 0), |(d, s), k| (d || l.dynamic[k], s + l.head_size[k]));
                l.dynamic[i] = dynamic;
                l.head_size[i] = if dynamic { 32 } else { size };
            }
            other => {
                l.kind[i] = other;
                l.dynamic[i] = true;
                l.head_size[i] = 32;
            }
        }
    }
    l
}

/// The module's `_checkTree`, rule for rule.
pub(crate) fn check_tree(c: &[FlatCondition]) -> Result<()> {
    let bad = |index: usize, reason: &'static str| Err(Error::UnsuitableConditions { index, reason });
    let n = c.len();
    if n == 0 || n > 255 {
        return bad(0, "a tree has 1 to 255 nodes");
    }
    if c[0].parent != 0 {
        return bad(0, "the root is node 0, its own parent");
    }
    for i in 1..n {
        if c[i].parent as usize >= i {
            return bad(i, "a parent comes before its children");
        }
        if c[i].parent < c[i - 1].parent {
            return bad(i, "nodes are in breadth-first order");
        }
    }
    let l = layout(&c.iter().map(|x| (x.parent, x.param_type)).collect::<Vec<_>>());
    if l.kind[0] != ParamType::Calldata {
        return bad(0, "the root describes calldata");
    }
    use Operator as O;
    use ParamType as T;
    for (i, node) in c.iter().enumerate() {
        let (op, ty, kids, len) = (node.operator, node.param_type, l.child_count[i], node.comp_value.len());
        if matches!(ty, T::Static | T::Dynamic) && kids != 0 {
            return bad(i, "Static/Dynamic: leaves");
        }
        match op {
            O::And | O::Or | O::Nor => {
                if ty != T::None || kids == 0 || len != 0 {
                    return bad(i, "And/Or/Nor: None, with children");
                }
                check_siblings(i, &l)?;
            }
            O::Pass => {
                if matches!(ty, T::None | T::Tuple) || kids != 0 || len != 0 {
                    return bad(i, "Pass: a leaf, not None or Tuple");
                }
            }
            O::Matches => {
                if !matches!(ty, T::Tuple | T::Array | T::Calldata | T::AbiEncoded) {
                    return bad(i, "Matches: on Tuple, Array, Calldata or AbiEncoded");
                }
                if kids == 0 {
                    return bad(i, "Matches: with children");
                }
                if len != 0 && !(ty == T::Calldata && len == 4) {
                    return bad(i, "Matches: no comparison value (a selector for Calldata)");
                }
                if len == 4 && node.comp_value.iter().all(|b| *b == 0) {
                    return bad(i, "a selector is not zero");
                }
                if ty == T::Array {
                    check_siblings(i, &l)?;
                }
            }
            O::ArraySome | O::ArrayEvery => {
                if ty != T::Array || kids != 1 || len != 0 {
                    return bad(i, "ArraySome/ArrayEvery: Array, one child");
                }
            }
            O::EqualToAvatar => {
                if ty != T::Static || len != 0 {
                    return bad(i, "EqualToAvatar: Static leaf");
                }
            }
            O::EqualTo => {
                if !(ty == T::Static && len == 32 || ty == T::Dynamic && len >= 64 && len % 32 == 0) {
                    return bad(i, "EqualTo: abi.encode of a Static word or of Dynamic bytes");
                }
            }
            O::GreaterThan | O::LessThan | O::SignedIntGreaterThan | O::SignedIntLessThan | O::WithinAllowance => {
                if ty != T::Static || len != 32 {
                    return bad(i, "a Static leaf with a 32-byte word");
                }
            }
            O::EtherWithinAllowance | O::CallWithinAllowance => {
                if ty != T::None || kids != 0 || len != 32 {
                    return bad(i, "Ether/CallWithinAllowance: a None leaf with a key");
                }
            }
            O::Bitmask => return bad(i, "operator not supported"),
        }
        let allowance_leaf = matches!(op, O::EtherWithinAllowance | O::CallWithinAllowance);
        let logical = matches!(op, O::And | O::Or | O::Nor);
        if i > 0 && l.kind[i] == T::None && !allowance_leaf && !logical {
            return bad(i, "a node without a type");
        }
    }
    Ok(())
}

fn check_siblings(i: usize, l: &Layout) -> Result<()> {
    let first = l.first_child[i];
    for k in first + 1..first + l.child_count[i] {
        if l.kind[k] != l.kind[first] || l.head_size[k] != l.head_size[first] || l.dynamic[k] != l.dynamic[first] {
            return Err(Error::UnsuitableConditions {
                index: k,
                reason: "siblings under a logical node or an array have one type",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_is_breadth_first_with_parent_indexes() {
        let tree = Condition::calldata(vec![
            Condition::tuple(vec![Condition::avatar(), Condition::any()]),
            Condition::one_of_addresses(&[Address::repeat_byte(1), Address::repeat_byte(2)]),
        ]);
        let flat = flatten(&tree).unwrap();
        let shape: Vec<(u8, ParamType, Operator)> = flat.iter().map(|f| (f.parent, f.param_type, f.operator)).collect();
        assert_eq!(
            shape,
            vec![
                (0, ParamType::Calldata, Operator::Matches),
                (0, ParamType::Tuple, Operator::Matches),
                (0, ParamType::None, Operator::Or),
                (1, ParamType::Static, Operator::EqualToAvatar),
                (1, ParamType::Static, Operator::Pass),
                (2, ParamType::Static, Operator::EqualTo),
                (2, ParamType::Static, Operator::EqualTo),
            ]
        );
        let l = layout(&flat.iter().map(|x| (x.parent, x.param_type)).collect::<Vec<_>>());
        assert_eq!(l.head_size[1], 64, "a static tuple of two words is inline");
        assert_eq!(l.kind[2], ParamType::Static, "an Or is typed by its children");
    }

    #[test]
    fn trees_the_module_would_refuse_are_refused_with_the_node() {
        let static_root = Condition::eq(U256::from(1));
        assert!(matches!(flatten(&static_root), Err(Error::UnsuitableConditions { index: 0, .. })));
        let empty_tuple = Condition::calldata(vec![Condition::tuple(vec![])]);
        assert!(matches!(flatten(&empty_tuple), Err(Error::UnsuitableConditions { index: 1, .. })));
        let mixed_or = Condition::calldata(vec![Condition::or(vec![
            Condition::any(),
            Condition::any_of_type(ParamType::Dynamic),
        ])]);
        assert!(matches!(flatten(&mixed_or), Err(Error::UnsuitableConditions { index: 3, .. })));
        let short_eq = Condition { comp_value: Bytes::from(vec![1u8; 31]), ..Condition::eq(U256::ZERO) };
        assert!(matches!(flatten(&Condition::calldata(vec![short_eq])), Err(Error::UnsuitableConditions { .. })));
    }
}
