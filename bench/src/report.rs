//! Turns repetitions into the one table: the median of each figure over the repetitions of a
//! cell, and "Arca ÷ this" as the median of per-repetition ratios (each ratio taken from
//! runs made back to back in the same repetition). Then the target checks of issue 4.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::load::LoadResult;
use crate::systems::Kind;
use crate::workloads::{Op, Workload};

/// The figures of one run of one cell.
#[derive(Clone, Debug)]
pub struct Cell {
    pub rps: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub requests: u64,
    pub errors: u64,
    pub client_cpu: f64,
    pub server_cpu: Option<f64>,
    pub other_cpu: f64,
}

impl Cell {
    pub fn from_result(r: &LoadResult) -> Cell {
        Cell {
            rps: r.rate(),
            p50: r.percentile_ms(0.50),
            p90: r.percentile_ms(0.90),
            p99: r.percentile_ms(0.99),
            max: r.max_ms(),
            requests: r.ok + r.errors,
            errors: r.errors,
            client_cpu: r.client_cpu,
            server_cpu: r.server_cpu,
            other_cpu: r.other_cpu,
        }
    }
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[derive(Default)]
pub struct Results {
    pub systems: Vec<Kind>,
    pub workloads: Vec<Workload>,
    pub unavailable: BTreeMap<Kind, String>,
    /// One entry per repetition; None when that run failed outright.
    pub runs: BTreeMap<(Workload, Kind), Vec<Option<Cell>>>,
    pub first_errors: BTreeMap<(Workload, Kind), String>,
    /// Servers that died mid-run and were restarted.
    pub restarts: Vec<String>,
    /// The cross-node invalidation delay of arca-postgres-2: (samples, p50, p99, max) in
    /// ms, or why it could not be measured.
    pub invalidation: Option<Result<(usize, f64, f64, f64), String>>,
}

/// Whether `kind` runs workload `w` at all (the ceiling only answers GetSecretValue).
pub fn applies(kind: Kind, w: &Workload) -> bool {
    kind != Kind::Ceiling || w.op == Op::Get
}

impl Results {
    fn cells(&self, w: &Workload, k: Kind) -> Vec<&Cell> {
        self.runs
            .get(&(*w, k))
            .map(|v| v.iter().flatten().collect())
            .unwrap_or_default()
    }

    fn med(&self, w: &Workload, k: Kind, f: impl Fn(&Cell) -> f64) -> Option<f64> {
        median(self.cells(w, k).into_iter().map(f).collect())
    }

    /// Median over repetitions of f(arca run) / f(k run), pairing runs of the same repetition.
    fn ratio(&self, w: &Workload, k: Kind, f: impl Fn(&Cell) -> f64) -> Option<f64> {
        median(self.paired(w, k, f))
    }

    /// f(arca run) / f(k run) for each repetition both completed, in order.
    fn paired(&self, w: &Workload, k: Kind, f: impl Fn(&Cell) -> f64) -> Vec<f64> {
        let (Some(a), Some(b)) = (self.runs.get(&(*w, Kind::Arca)), self.runs.get(&(*w, k))) else {
            return Vec::new();
        };
        a.iter()
            .zip(b.iter())
            .filter_map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) if f(b) > 0.0 => Some(f(a) / f(b)),
                _ => None,
            })
            .collect()
    }

    /// The markdown table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str("| system | operation | conc | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | client CPU | server CPU | other CPU | Arca ÷ this |\n");
        s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for w in &self.workloads {
            for &k in &self.systems {
                if !applies(k, w) {
                    continue;
                }
                let label = w.op.label();
                let c = w.concurrency;
                if let Some(reason) = self.unavailable.get(&k) {
                    let _ = writeln!(
                        s,
                        "| {} | {label} | {c} | unavailable: {} | | | | | | | | | |",
                        k.name(),
                        reason.replace('|', "/")
                    );
                    continue;
                }
                let cells = self.cells(w, k);
                if cells.is_empty() {
                    let _ = writeln!(
                        s,
                        "| {} | {label} | {c} | failed | | | | | | | | | |",
                        k.name()
                    );
                    continue;
                }
                let ms = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.3}"));
                let pct = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.0}%"));
                let errors: u64 = cells.iter().map(|c| c.errors).sum();
                let requests: u64 = cells.iter().map(|c| c.requests).sum();
                let ratio = if k == Kind::Arca {
                    "1".to_string()
                } else {
                    self.ratio(w, k, |c| c.rps)
                        .map_or("—".into(), |r| format!("{r:.2}×"))
                };
                let _ = writeln!(
                    s,
                    "| {} | {label} | {c} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {ratio} |",
                    k.name(),
                    self.med(w, k, |c| c.rps)
                        .map_or("—".into(), |v| group_thousands(v.round() as u64)),
                    ms(self.med(w, k, |c| c.p50)),
                    ms(self.med(w, k, |c| c.p90)),
                    ms(self.med(w, k, |c| c.p99)),
                    ms(self.med(w, k, |c| c.max)),
                    if errors == 0 {
                        "0".to_string()
                    } else {
                        format!("{errors} of {requests}")
                    },
                    pct(self.med(w, k, |c| c.client_cpu)),
                    pct(median(cells.iter().filter_map(|c| c.server_cpu).collect())),
                    pct(self.med(w, k, |c| c.other_cpu)),
                );
            }
        }
        s
    }

    /// The first error seen in each cell that had any.
    pub fn error_notes(&self) -> String {
        let mut s = String::new();
        for ((w, k), e) in &self.first_errors {
            let _ = writeln!(
                s,
                "- {} {} c{}: first error: {}",
                k.name(),
                w.op.label(),
                w.concurrency,
                e.replace('\n', " ")
            );
        }
        s
    }

    fn find(&self, op: Op, c: usize) -> Option<Workload> {
        self.workloads
            .iter()
            .copied()
            .find(|w| w.op == op && w.concurrency == c)
    }

    /// The targets of issue 4 that a single run can check, as PASS/MISS lines.
    pub fn target_checks(&self) -> Vec<String> {
        let mut out = Vec::new();
        let has = |k: Kind| self.systems.contains(&k) && !self.unavailable.contains_key(&k);
        let unknown = |what: &str, why: &str| format!("UNKNOWN {what}: {why}");
        let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
        match &self.invalidation {
            Some(Ok((n, p50, p99, max))) => out.push(format!(
                "{} Cross-node invalidation p99 ≤ 50 ms: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({n} writes on one node, each read back on the other)",
                verdict(*p99 <= 50.0)
            )),
            Some(Err(e)) => out.push(unknown("Cross-node invalidation p99 ≤ 50 ms", e)),
            None => {}
        }

        if let Some(w) = self.find(Op::Get, 16) {
            match self.med(&w, Kind::Arca, |c| c.rps) {
                Some(r) => out.push(format!(
                    "{} GetSecretValue c16 ≥ 30,000 req/s: {} ({:.0}% of target)",
                    verdict(r >= 30_000.0),
                    group_thousands(r.round() as u64),
                    r / 30_000.0 * 100.0
                )),
                None => out.push(unknown("GetSecretValue c16 ≥ 30,000 req/s", "no Arca run")),
            }
            let vs = |k: Kind, want: f64, what: &str, out: &mut Vec<String>| {
                let line = format!("GetSecretValue c16 ≥ {what}");
                if !has(k) {
                    let why = self
                        .unavailable
                        .get(&k)
                        .map_or("not in this run".to_string(), |r| {
                            format!("{} unavailable: {r}", k.name())
                        });
                    out.push(unknown(&line, &why));
                    return;
                }
                match self.ratio(&w, k, |c| c.rps) {
                    Some(r) => out.push(format!(
                        "{} {line}: {r:.2}× ({:.0}% of target; {} {} req/s)",
                        verdict(r >= want),
                        r / want * 100.0,
                        k.name(),
                        self.med(&w, k, |c| c.rps)
                            .map_or("—".into(), |v| group_thousands(v.round() as u64))
                    )),
                    None => out.push(unknown(&line, "no paired runs")),
                }
            };
            vs(
                Kind::Ceiling,
                0.40,
                "40% of ceiling (ratio ≥ 0.40)",
                &mut out,
            );
            vs(
                Kind::ArcaNoAudit,
                0.90,
                "90% of Arca without its audit trail (ratio ≥ 0.90)",
                &mut out,
            );
            let line = "GetSecretValue c16 with policies (a user of 10 statements, a resource policy of 3) ≥ 90% of without";
            if has(Kind::ArcaPolicies) {
                // The ratio is without ÷ with; the target is stated the other way.
                match self.ratio(&w, Kind::ArcaPolicies, |c| c.rps) {
                    Some(r) => out.push(format!(
                        "{} {line}: {:.2}× (arca-policies {} req/s)",
                        verdict(1.0 / r >= 0.9),
                        1.0 / r,
                        self.med(&w, Kind::ArcaPolicies, |c| c.rps)
                            .map_or("—".into(), |v| group_thousands(v.round() as u64))
                    )),
                    None => out.push(unknown(line, "no paired runs")),
                }
            } else {
                out.push(unknown(
                    line,
                    "arca-policies not in this run or unavailable",
                ));
            }
            if has(Kind::ArcaPostgres) {
                // The ratio is SQLite ÷ PostgreSQL; the target is stated the other way.
                let line = "GetSecretValue c16 on PostgreSQL ≥ 80% of SQLite";
                match self.ratio(&w, Kind::ArcaPostgres, |c| c.rps) {
                    Some(r) => out.push(format!(
                        "{} {line}: {:.2}×",
                        verdict(1.0 / r >= 0.8),
                        1.0 / r
                    )),
                    None => out.push(unknown(line, "no paired runs")),
                }
            }
            if has(Kind::ArcaPostgres2) {
                let line = "GetSecretValue c16 on PostgreSQL, two nodes ≥ 80% of SQLite";
                match self.ratio(&w, Kind::ArcaPostgres2, |c| c.rps) {
                    Some(r) => out.push(format!(
                        "{} {line}: {:.2}× (both nodes on this one machine)",
                        verdict(1.0 / r >= 0.8),
                        1.0 / r
                    )),
                    None => out.push(unknown(line, "no paired runs")),
                }
            }
            vs(Kind::LocalStack, 40.0, "40× LocalStack", &mut out);
            vs(Kind::Moto, 40.0, "40× moto", &mut out);
            vs(Kind::OpenBao, 5.0, "5× OpenBao KV v2 read", &mut out);
            if has(Kind::Ceiling) {
                // Arca's p99 over the ceiling's, per repetition.
                let line = "GetSecretValue p99 c16 ≤ 1.5× ceiling p99";
                match (
                    self.ratio(&w, Kind::Ceiling, |c| 1.0 / c.p99.max(1e-6)),
                    self.med(&w, Kind::Arca, |c| c.p99),
                    self.med(&w, Kind::Ceiling, |c| c.p99),
                ) {
                    // ratio of reciprocals = ceiling p99 / arca p99; invert it.
                    (Some(inv), Some(a), Some(c)) => {
                        let r = 1.0 / inv;
                        let each = self
                            .paired(&w, Kind::Ceiling, |c| c.p99)
                            .iter()
                            .map(|r| format!("{r:.2}"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        out.push(format!(
                            "{} {line}: {r:.2}× (Arca {a:.3} ms, ceiling {c:.3} ms; per repetition {each})",
                            verdict(r <= 1.5)
                        ))
                    }
                    _ => out.push(unknown(line, "no paired runs")),
                }
            } else {
                out.push(unknown(
                    "GetSecretValue p99 c16 ≤ 1.5× ceiling p99",
                    "ceiling not in this run",
                ));
            }
        }
        if let Some(w) = self.find(Op::Get, 1) {
            if let Some(p) = self.med(&w, Kind::Arca, |c| c.p99) {
                out.push(format!(
                    "{} GetSecretValue p99 c1 ≤ 0.5 ms: {p:.3} ms",
                    verdict(p <= 0.5)
                ));
            }
        }
        if let Some(w) = self.find(Op::Put, 16) {
            if let Some(r) = self.med(&w, Kind::Arca, |c| c.rps) {
                out.push(format!(
                    "{} PutSecretValue c16 ≥ 5,000 req/s: {} ({:.0}% of target)",
                    verdict(r >= 5_000.0),
                    group_thousands(r.round() as u64),
                    r / 5_000.0 * 100.0
                ));
            }
            if let Some(r) = self.med(&w, Kind::ArcaPostgres, |c| c.rps) {
                out.push(format!(
                    "{} PutSecretValue c16 on PostgreSQL ≥ 3,000 req/s: {}",
                    verdict(r >= 3_000.0),
                    group_thousands(r.round() as u64)
                ));
            }
            if let Some(r) = self.med(&w, Kind::ArcaPostgres2, |c| c.rps) {
                out.push(format!(
                    "{} PutSecretValue c16 on PostgreSQL, two nodes ≥ 3,000 req/s: {}",
                    verdict(r >= 3_000.0),
                    group_thousands(r.round() as u64)
                ));
            }
            if has(Kind::ArcaNoAudit) {
                if let Some(r) = self.ratio(&w, Kind::ArcaNoAudit, |c| c.rps) {
                    out.push(format!(
                        "INFO PutSecretValue c16 with the audit trail ÷ without: {r:.2}× (the audit record's cost on a write: {:.0}%)",
                        (1.0 - r) * 100.0
                    ));
                }
            }
            let line = "PutSecretValue c16 > OpenBao (dev, in-memory) KV v2 write";
            if has(Kind::OpenBao) {
                match self.ratio(&w, Kind::OpenBao, |c| c.rps) {
                    Some(r) => out.push(format!(
                        "{} {line}: {r:.2}× (OpenBao {} req/s)",
                        verdict(r > 1.0),
                        self.med(&w, Kind::OpenBao, |c| c.rps)
                            .map_or("—".into(), |v| group_thousands(v.round() as u64))
                    )),
                    None => out.push(unknown(line, "no paired runs")),
                }
            } else {
                out.push(unknown(line, "openbao not in this run or unavailable"));
            }
        }
        out
    }
}

/// 12345 -> "12,345".
pub fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        // (not is_multiple_of: the workspace supports Rust 1.85)
        if i > 0 && matches!((s.len() - i) % 3, 0) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn thousands() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(21345), "21,345");
        assert_eq!(group_thousands(1000000), "1,000,000");
    }
}
