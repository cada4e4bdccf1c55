//! Pure DeFi protocol maths, written once and used by both the backtest and the transaction builder.

pub mod constant_product;
