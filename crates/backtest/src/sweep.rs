//! Parameter sweeps: a grid of config overrides, run in parallel over the same market data.

use crate::lp::{LpEngine, LpMetrics, PoolMarket};
use crate::{BacktestConfig, Error, Market, Metrics, Result, build_lp_strategy, run_backtest};
use rayon::prelude::*;
use serde::Serialize;

/// The most points one grid may have.
pub const MAX_POINTS: usize = 1_000_000;

/// One axis of a grid: a dotted config key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Dotted key; a bare name means `strategy.<name>`.
    pub key: String,
    /// Values to try.
    pub values: Vec<toml::Value>,
}

/// Parses `period=7,14,21;oversold=20..35:5;ma=sma,ema`. A range `a..b:step` includes both ends; `:step` defaults
/// to 1. Bare keys are strategy parameters; other tables are named in full (`risk.cooldown_bars=0,5`).
///
/// # Errors
/// A malformed axis, an empty range, a repeated key, or a `market.` key (market data is shared by all points).
pub fn parse_grid(grid: &str) -> Result<Vec<Axis>> {
    let mut axes: Vec<Axis> = Vec::new();
    for part in grid.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, spec) =
            part.split_once('=').ok_or_else(|| Error::Grid(format!("expected key=values in {part:?}")))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::Grid(format!("missing key in {part:?}")));
        }
        let key = if key.contains('.') { key.to_string() } else { format!("strategy.{key}") };
        if key.starts_with("market.") {
            return Err(Error::Grid(format!("{key}: market settings cannot be swept (all points share the data)")));
        }
        if key == "strategy.kind" {
            return Err(Error::Grid("strategy.kind cannot be swept: run one sweep per strategy".into()));
        }
        if axes.iter().any(|a| a.key == key) {
            return Err(Error::Grid(format!("{key} appears twice")));
        }
        let mut values = Vec::new();
        for item in spec.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(Error::Grid(format!("{key}: empty value in {spec:?}")));
            }
            match item.split_once("..") {
                Some((lo, rest)) => values.extend(range(&key, lo, rest)?),
                None => values.push(scalar(item)),
            }
        }
        axes.push(Axis { key, values });
    }
    if axes.is_empty() {
        return Err(Error::Grid("no axes; expected e.g. \"period=7,14,21;oversold=20..35:5\"".into()));
    }
    let points = axes.iter().try_fold(1usize, |n, a| n.checked_mul(a.values.len()));
    if points.is_none_or(|n| n > MAX_POINTS) {
        return Err(Error::Grid(format!("the grid has more than {MAX_POINTS} points; narrow it")));
    }
    Ok(axes)
}

fn scalar(s: &str) -> toml::Value {
    if let Ok(i) = s.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = s.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = s.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(s.to_string())
    }
}

fn range(key: &str, lo: &str, rest: &str) -> Result<Vec<toml::Value>> {
    let (hi, step) = rest.split_once(':').unwrap_or((rest, "1"));
    let bad = || Error::Grid(format!("{key}: expected a range like 20..35:5, got {lo}..{rest}"));
    let (lo, hi, step) = (lo.trim(), hi.trim(), step.trim());
    if let (Ok(a), Ok(b), Ok(s)) = (lo.parse::<i64>(), hi.parse::<i64>(), step.parse::<i64>()) {
        if s <= 0 || a > b || (b - a) / s >= MAX_POINTS as i64 {
            return Err(bad());
        }
        return Ok((a..=b).step_by(s as usize).map(toml::Value::Integer).collect());
    }
    let (a, b, s) = (
        lo.parse::<f64>().map_err(|_| bad())?,
        hi.parse::<f64>().map_err(|_| bad())?,
        step.parse::<f64>().map_err(|_| bad())?,
    );
    if !(s > 0.0 && a <= b && a.is_finite() && b.is_finite()) || (b - a) / s >= MAX_POINTS as f64 {
        return Err(bad());
    }
    let n = ((b - a) / s + 1e-9).floor() as usize;
    // a + i*s drifts (0.1 * 3 = 0.30000000000000004): round to 12 significant digits so points read as written.
    let tidy = |v: f64| if v == 0.0 { v } else { format!("{v:.11e}").parse().unwrap_or(v) };
    Ok((0..=n).map(|i| toml::Value::Float(tidy(a + i as f64 * s))).collect())
}

/// Every combination of the axes' values, as (key, value) lists in axis order.
pub fn grid_points(axes: &[Axis]) -> Vec<Vec<(String, toml::Value)>> {
    let mut points = vec![Vec::new()];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                axis.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((axis.key.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    points
}

/// Applies overrides to a config given as a TOML table and parses the result.
///
/// # Errors
/// When an override does not fit the config (wrong type, unknown key, out of range).
pub fn apply(base: &toml::Table, point: &[(String, toml::Value)]) -> Result<BacktestConfig> {
    let mut table = base.clone();
    for (key, value) in point {
        let mut cursor = &mut table;
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        for part in parts {
            let entry = cursor.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cursor = entry.as_table_mut().ok_or_else(|| Error::Grid(format!("{key}: {part} is not a table")))?;
        }
        cursor.insert(last.to_string(), value.clone());
    }
    let text = toml::to_string(&table).map_err(|e| Error::Grid(e.to_string()))?;
    // The TOML here is generated, so its line numbers mean nothing to the user: report the point and the message.
    let name = describe(point);
    let config: BacktestConfig =
        toml::from_str(&text).map_err(|e| Error::Grid(format!("point {name}: {}", e.message().trim())))?;
    config.validate(&name)?;
    Ok(config)
}

/// `period=14 oversold=25`.
pub fn describe(point: &[(String, toml::Value)]) -> String {
    point
        .iter()
        .map(|(k, v)| format!("{}={}", k.strip_prefix("strategy.").unwrap_or(k), v))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One evaluated grid point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    /// The overrides, e.g. `period=14 oversold=25`.
    pub params: String,
    /// Its metrics.
    pub metrics: Metrics,
    /// Its LP metrics, for LP strategies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lp: Option<LpMetrics>,
}

impl SweepPoint {
    /// A metric or LP metric by name.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).or_else(|| self.lp.as_ref().and_then(|l| l.get(name)))
    }
}

/// What every point of a sweep runs on: candle markets, or the pool of an LP config (the grid's overrides cannot
/// reach `[market]` or `[pool]`, so all points share it).
#[derive(Clone, Copy)]
pub enum SweepData<'a> {
    /// Candle markets.
    Markets(&'a [Market]),
    /// An LP strategy's pool.
    Pool(&'a PoolMarket),
    /// A lending strategy's markets.
    Lending(&'a crate::lending::RateMarket),
}

/// Runs every point of `axes` over `markets` on `jobs` threads, calling `tick` after each point, and returns them
/// ranked by `metric` (best first).
///
/// # Errors
/// An unknown metric, a point whose overrides do not fit the config (checked before anything runs), or a thread
/// pool that cannot start.
pub fn run_sweep(
    base: &toml::Table,
    dir: &std::path::Path,
    axes: &[Axis],
    data: SweepData<'_>,
    metric: &str,
    jobs: usize,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<SweepPoint>> {
    let lp = matches!(data, SweepData::Pool(_));
    let mut names: Vec<&str> = Metrics::NAMES.to_vec();
    if lp {
        names.extend(LpMetrics::NAMES);
    }
    if !names.contains(&metric) {
        return Err(Error::Grid(format!("unknown metric {metric:?}; expected one of {}", names.join(", "))));
    }
    let configs: Vec<(String, BacktestConfig)> = grid_points(axes)
        .into_iter()
        .map(|p| {
            let mut config = apply(base, &p)?;
            config.resolve_paths(dir);
            Ok((describe(&p), config))
        })
        .collect::<Result<_>>()?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build().map_err(|e| Error::Grid(e.to_string()))?;
    let mut points: Vec<SweepPoint> = pool.install(|| {
        configs
            .par_iter()
            .map(|(params, config)| {
                let result = match data {
                    SweepData::Markets(markets) => run_backtest(config, markets).map(|r| SweepPoint {
                        params: params.clone(),
                        metrics: r.metrics,
                        lp: None,
                    }),
                    SweepData::Pool(pool) => build_lp_strategy(config, pool).map(|strategy| {
                        let r = LpEngine::new(&strategy, pool, config.costs(), config.portfolio.initial_cash)
                            .run(&mut |_| {});
                        SweepPoint { params: params.clone(), metrics: r.result.metrics, lp: Some(r.lp) }
                    }),
                    SweepData::Lending(market) => crate::run::build_rotator(config).map(|strategy| {
                        let r = crate::lending::LendingEngine::new(
                            &strategy,
                            market,
                            config.costs(),
                            config.portfolio.initial_cash,
                        )
                        .run(&mut |_| {});
                        SweepPoint { params: params.clone(), metrics: r.result.metrics, lp: None }
                    }),
                };
                tick();
                result
            })
            .collect::<Result<_>>()
    })?;
    let key = |p: &SweepPoint| p.get(metric).filter(|v| v.is_finite());
    let higher = if Metrics::NAMES.contains(&metric) {
        Metrics::higher_is_better(metric)
    } else {
        LpMetrics::higher_is_better(metric)
    };
    points.sort_by(|a, b| match (key(a), key(b)) {
        (Some(x), Some(y)) if higher => y.total_cmp(&x),
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        let axes =
            parse_grid("period=7,14,21;oversold=20..35:5; risk.cooldown_bars=0..2 ;nbdev=1.5..2.5:0.5;ma=sma,ema")
                .unwrap();
        let keys: Vec<_> = axes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            keys,
            ["strategy.period", "strategy.oversold", "risk.cooldown_bars", "strategy.nbdev", "strategy.ma"]
        );
        let ints = |a: &Axis| a.values.iter().map(|v| v.as_integer().unwrap()).collect::<Vec<_>>();
        assert_eq!(ints(&axes[0]), [7, 14, 21]);
        assert_eq!(ints(&axes[1]), [20, 25, 30, 35]);
        assert_eq!(ints(&axes[2]), [0, 1, 2]);
        let floats: Vec<f64> = axes[3].values.iter().map(|v| v.as_float().unwrap()).collect();
        assert_eq!(floats, [1.5, 2.0, 2.5]);
        let tenths = parse_grid("nbdev=0.1..0.9:0.1").unwrap();
        let tenths: Vec<f64> = tenths[0].values.iter().map(|v| v.as_float().unwrap()).collect();
        assert_eq!(tenths, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
        assert_eq!(axes[4].values[1].as_str(), Some("ema"));
        assert_eq!(grid_points(&axes).len(), 3 * 4 * 3 * 3 * 2);
    }

    #[test]
    fn rejects_bad_grids() {
        for bad in [
            "",
            "period",
            "period=",
            "period=35..20",
            "period=1..5:0",
            "market.seed=1,2",
            "a=1;a=2",
            "kind=rsi",
            "period=2..100000000000",
            "a=1..1000;b=1..1000;c=1..1000",
        ] {
            assert!(parse_grid(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn overrides_are_checked_like_a_config() {
        let base: toml::Table = toml::from_str("[strategy]\nkind = \"rsi\"\n").unwrap();
        let ok = apply(&base, &[("strategy.period".into(), toml::Value::Integer(7))]).unwrap();
        assert!(matches!(ok.strategy, sextant_strategies::StrategySpec::Rsi { period: 7, .. }));
        let err = apply(&base, &[("strategy.period".into(), toml::Value::Integer(1))]).unwrap_err();
        assert!(err.to_string().contains("strategy.period must be between 2 and 100000, got 1"), "{err}");
        let err = apply(&base, &[("strategy.fast".into(), toml::Value::Integer(5))]).unwrap_err();
        assert!(err.to_string().contains("unknown field `fast`"), "{err}");
        let err = apply(&base, &[("strategy.period".into(), toml::Value::Float(7.5))]).unwrap_err();
        assert_eq!(err.to_string(), "grid: point period=7.5: invalid type: floating point `7.5`, expected usize");
    }
}
