//! Pure protocol maths, shared by the backtest and the TransactionManager's quotes.

pub mod constant_product;
pub mod uniswap_v3;
