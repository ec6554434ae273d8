//! What okr-bench prints: a header naming the machine, the database, the
//! command and the server binary, then one table per scenario (figure,
//! okr-pulse, baseline, ratio, goal), or the same as one JSON object per
//! scenario with `--json`.

use serde_json::{Value, json};

use crate::server::Launcher;

/// The machine and the run, printed once above the tables and repeated in
/// every JSON object.
pub struct Header {
    cpu: String,
    cores: usize,
    memory: String,
    kernel: String,
    database: String,
    command: String,
    server: String,
    date: String,
}

impl Header {
    /// Reads the machine from /proc and the run from the arguments.
    pub fn collect(launcher: &Launcher) -> Header {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let cores = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        Header {
            cpu,
            cores,
            memory,
            kernel,
            database: launcher.database_label(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            server: launcher.binary().display().to_string(),
            date: chrono::Utc::now()
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        }
    }

    /// The header as text lines.
    pub fn render(&self) -> String {
        format!(
            "machine:  {} ({} cores), {} memory, Linux {}\ndatabase: {}\ncommand:  {}\nserver:   {}\ndate:     {}\n",
            self.cpu,
            self.cores,
            self.memory,
            self.kernel,
            self.database,
            self.command,
            self.server,
            self.date
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "machine": {
                "cpu": self.cpu,
                "cores": self.cores,
                "memory": self.memory,
                "kernel": self.kernel,
            },
            "database": self.database,
            "command": self.command,
            "server": self.server,
            "date": self.date,
        })
    }
}

/// How a figure's numbers are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Seconds,
    PerSecond,
    KiB,
    MiB,
    Count,
    /// A plain number with two decimals (statements per request …).
    Number,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Milliseconds => "ms",
            Unit::Seconds => "s",
            Unit::PerSecond => "/s",
            Unit::KiB => "KiB",
            Unit::MiB => "MiB",
            Unit::Count => "",
            Unit::Number => "",
        }
    }

    fn format(self, value: f64) -> String {
        let number = match self {
            Unit::Milliseconds if value < 10.0 => format!("{value:.2}"),
            Unit::Milliseconds => format!("{value:.1}"),
            Unit::Seconds => format!("{value:.2}"),
            Unit::PerSecond => format!("{value:.0}"),
            Unit::KiB | Unit::MiB => format!("{value:.1}"),
            Unit::Count => format!("{value:.0}"),
            // Small non-zero numbers keep their first digits.
            Unit::Number if value != 0.0 && value.abs() < 0.1 => format!("{value:.4}"),
            Unit::Number => format!("{value:.2}"),
        };
        match self.name() {
            "" => number,
            unit if unit.starts_with('/') => format!("{number}{unit}"),
            unit => format!("{number} {unit}"),
        }
    }
}

/// How a ratio is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatioStyle {
    /// `1.23×`.
    Times,
    /// `57 %`.
    Percent,
}

/// A goal and whether this run met it.
#[derive(Debug, Clone)]
pub struct Goal {
    text: String,
    met: Option<bool>,
}

impl Goal {
    /// Met when `actual` is at most `limit`; unknown without a value.
    pub fn at_most(text: impl Into<String>, limit: f64, actual: Option<f64>) -> Goal {
        Goal {
            text: text.into(),
            met: actual.map(|a| a <= limit),
        }
    }

    /// Met when `actual` is at least `limit`; unknown without a value.
    pub fn at_least(text: impl Into<String>, limit: f64, actual: Option<f64>) -> Goal {
        Goal {
            text: text.into(),
            met: actual.map(|a| a >= limit),
        }
    }

    /// A goal judged by the scenario itself.
    pub fn judged(text: impl Into<String>, met: Option<bool>) -> Goal {
        Goal {
            text: text.into(),
            met,
        }
    }

    fn render(&self) -> String {
        match self.met {
            Some(true) => format!("{} (met)", self.text),
            Some(false) => format!("{} (MISSED)", self.text),
            None => self.text.clone(),
        }
    }
}

/// One row of a scenario's table.
#[derive(Debug, Clone)]
pub struct Figure {
    name: String,
    unit: Unit,
    value: Option<f64>,
    baseline: Option<f64>,
    ratio: Option<(f64, RatioStyle)>,
    goal: Option<Goal>,
}

impl Figure {
    /// A figure of okr-pulse alone; `None` prints as n/a.
    pub fn new(name: impl Into<String>, unit: Unit, value: Option<f64>) -> Figure {
        Figure {
            name: name.into(),
            unit,
            value,
            baseline: None,
            ratio: None,
            goal: None,
        }
    }

    /// The same figure of the baseline, in the same unit.
    pub fn baseline(mut self, baseline: Option<f64>) -> Figure {
        self.baseline = baseline;
        self
    }

    /// The ratio column.
    pub fn ratio(mut self, ratio: Option<f64>, style: RatioStyle) -> Figure {
        self.ratio = ratio.filter(|r| r.is_finite()).map(|r| (r, style));
        self
    }

    pub fn goal(mut self, goal: Goal) -> Figure {
        self.goal = Some(goal);
        self
    }

    fn cells(&self) -> [String; 5] {
        let na = || "n/a".to_owned();
        [
            self.name.clone(),
            self.value.map_or_else(na, |v| self.unit.format(v)),
            self.baseline
                .map_or_else(String::new, |v| self.unit.format(v)),
            match self.ratio {
                Some((r, RatioStyle::Times)) => format!("{r:.2}×"),
                Some((r, RatioStyle::Percent)) => format!("{:.0} %", r * 100.0),
                None => String::new(),
            },
            self.goal.as_ref().map(Goal::render).unwrap_or_default(),
        ]
    }

    fn to_json(&self) -> Value {
        json!({
            "figure": self.name,
            "unit": self.unit.name(),
            "okr_pulse": self.value,
            "baseline": self.baseline,
            "ratio": self.ratio.map(|(r, _)| r),
            "goal": self.goal.as_ref().map(|g| g.text.clone()),
            "met": self.goal.as_ref().and_then(|g| g.met),
        })
    }
}

/// Everything one scenario measured.
#[derive(Debug, Clone)]
pub struct Report {
    scenario: &'static str,
    /// What was measured with which sizes and settings.
    parameters: Vec<(String, String)>,
    figures: Vec<Figure>,
    notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &'static str) -> Report {
        Report {
            scenario,
            parameters: Vec::new(),
            figures: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A size or setting of this run, printed above the table.
    pub fn parameter(&mut self, name: impl Into<String>, value: impl ToString) {
        self.parameters.push((name.into(), value.to_string()));
    }

    pub fn push(&mut self, figure: Figure) {
        self.figures.push(figure);
    }

    /// A sentence printed under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The scenario as a text table.
    pub fn render(&self) -> String {
        let mut out = format!("\n== {} ==\n", self.scenario);
        for (name, value) in &self.parameters {
            out.push_str(&format!("{name}: {value}\n"));
        }
        let header = ["figure", "okr-pulse", "baseline", "ratio", "goal"].map(str::to_owned);
        let rows: Vec<[String; 5]> = std::iter::once(header)
            .chain(self.figures.iter().map(Figure::cells))
            .collect();
        let mut widths = [0usize; 5];
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for (i, row) in rows.iter().enumerate() {
            out.push_str(&render_row(row, &widths));
            if i == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                out.push_str(&format!("{}\n", rule.join("-|-")));
            }
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }

    /// The scenario as one JSON object, header included.
    pub fn to_json(&self, header: &Header) -> Value {
        let mut object = header.to_json();
        object["scenario"] = json!(self.scenario);
        object["parameters"] = self
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        object["figures"] = self.figures.iter().map(Figure::to_json).collect();
        object["notes"] = json!(self.notes);
        object
    }
}

/// Server settings a scenario changed from the benchmark's defaults, as
/// `NAME=value` words.
pub fn settings(env: &[(&str, String)]) -> String {
    if env.is_empty() {
        return "benchmark defaults".to_owned();
    }
    let listed: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    listed.join(" ")
}

/// One table row: text left-aligned, numbers right-aligned.
fn render_row(cells: &[String; 5], widths: &[usize; 5]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(column, (cell, width))| {
            let pad = width - cell.chars().count();
            if column == 1 || column == 2 || column == 3 {
                format!("{}{cell}", " ".repeat(pad))
            } else {
                format!("{cell}{}", " ".repeat(pad))
            }
        })
        .collect();
    format!("{}\n", padded.join(" | ").trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_their_unit_and_missing_ones_as_n_a() {
        let figure = Figure::new("p50", Unit::Milliseconds, Some(1.234))
            .baseline(Some(20.0))
            .ratio(Some(0.0617), RatioStyle::Times)
            .goal(Goal::at_most("≤ 1.5×", 1.5, Some(0.0617)));
        let cells = figure.cells();
        assert_eq!(cells[1], "1.23 ms");
        assert_eq!(cells[2], "20.0 ms");
        assert_eq!(cells[3], "0.06×");
        assert_eq!(cells[4], "≤ 1.5× (met)");
        let missing = Figure::new("statements", Unit::Number, None).cells();
        assert_eq!(missing[1], "n/a");
    }
}
