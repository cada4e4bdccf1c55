//! The crate's error type: invalid indicator parameters.

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong building an indicator.
///
/// Only construction can fail; `update` never does. Messages are lowercase and
/// name the indicator, the parameter, what was expected and what was found,
/// e.g. `rsi period must be >= 2, got 1`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An integer parameter is below TA-Lib's minimum.
    #[error("{indicator} {param} must be >= {min}, got {got}")]
    TooSmall {
        /// Indicator name, lowercase (`"sma"`, `"macd"`, ...).
        indicator: &'static str,
        /// Parameter name (`"period"`, `"fast period"`, ...).
        param: &'static str,
        /// Smallest accepted value.
        min: usize,
        /// Value supplied.
        got: usize,
    },
    /// An integer parameter is above TA-Lib's maximum.
    #[error("{indicator} {param} must be <= {max}, got {got}")]
    TooLarge {
        /// Indicator name, lowercase.
        indicator: &'static str,
        /// Parameter name.
        param: &'static str,
        /// Largest accepted value.
        max: usize,
        /// Value supplied.
        got: usize,
    },
    /// A real parameter is NaN or infinite.
    #[error("{indicator} {param} must be finite, got {got}")]
    NotFinite {
        /// Indicator name, lowercase.
        indicator: &'static str,
        /// Parameter name.
        param: &'static str,
        /// Value supplied.
        got: f64,
    },
}

/// TA-Lib's upper bound for every period parameter.
pub(crate) const MAX_PERIOD: usize = 100_000;

/// Check `min <= value <= MAX_PERIOD`.
pub(crate) fn check_period(indicator: &'static str, param: &'static str, value: usize, min: usize) -> Result<usize> {
    if value < min {
        Err(Error::TooSmall { indicator, param, min, got: value })
    } else if value > MAX_PERIOD {
        Err(Error::TooLarge { indicator, param, max: MAX_PERIOD, got: value })
    } else {
        Ok(value)
    }
}

/// Check that a real parameter is finite.
pub(crate) fn check_finite(indicator: &'static str, param: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() { Ok(value) } else { Err(Error::NotFinite { indicator, param, got: value }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_parameter_expectation_and_value() {
        assert_eq!(check_period("rsi", "period", 1, 2).unwrap_err().to_string(), "rsi period must be >= 2, got 1");
        assert_eq!(
            check_period("atr", "period", 100_001, 1).unwrap_err().to_string(),
            "atr period must be <= 100000, got 100001"
        );
        assert_eq!(
            check_finite("bbands", "nbdev", f64::NAN).unwrap_err().to_string(),
            "bbands nbdev must be finite, got NaN"
        );
    }

    #[test]
    fn bounds_are_inclusive() {
        assert_eq!(check_period("sma", "period", 2, 2), Ok(2));
        assert_eq!(check_period("sma", "period", MAX_PERIOD, 2), Ok(MAX_PERIOD));
        assert_eq!(check_finite("bbands", "nbdev", f64::MAX), Ok(f64::MAX));
        assert_eq!(check_finite("bbands", "nbdev", -2.5), Ok(-2.5));
        assert!(check_finite("bbands", "nbdev", f64::INFINITY).is_err());
        assert!(check_finite("bbands", "nbdev", f64::NEG_INFINITY).is_err());
    }
}
