//! Pure protocol maths, shared by the backtest and the TransactionManager's quotes.

pub mod aave_v3;
pub mod compound_v3;
pub mod constant_product;
pub mod erc4626;
pub mod pendle;
pub mod uniswap_v3;
pub mod vault;
