//! Prometheus text exposition, parsed into samples a test can sum over.

/// One sample line: `name{label="value",...} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// All samples of one `/metrics` scrape.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub text: String,
}

// === impl Metrics ===

impl Metrics {
    /// Parses text format (Prometheus 0.0.4 or OpenMetrics); unparsable lines are skipped.
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(parse_line)
            .collect();
        Self {
            samples,
            text: text.to_string(),
        }
    }

    /// Sum over the series of `name` that carry all of `labels` (0 when none match).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.sum_where(name, |s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
    }

    /// Sum over the series of `name` for which `pred` holds.
    pub fn sum_where(&self, name: &str, pred: impl Fn(&Sample) -> bool) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && pred(s))
            .map(|s| s.value)
            .sum()
    }

    /// The series of `name`.
    pub fn series(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// Whether a metric family exists: a sample named `name` or `name_{count,sum,bucket}`,
    /// or a `# TYPE name` line (a family with no series yet).
    pub fn has_family(&self, name: &str) -> bool {
        let suffixed = |s: &Sample| {
            s.name == name
                || ["_count", "_sum", "_bucket", "_total"]
                    .iter()
                    .any(|suf| s.name == format!("{name}{suf}"))
        };
        self.samples.iter().any(suffixed)
            || self.text.lines().any(|l| {
                let mut parts = l.split_whitespace();
                parts.next() == Some("#")
                    && parts.next() == Some("TYPE")
                    && parts
                        .next()
                        .is_some_and(|n| n == name || n == name.trim_end_matches("_total"))
            })
    }
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) if line[..open].find(' ').is_none() => {
            let close = find_label_end(line, open)?;
            let labels = parse_labels(&line[open + 1..close])?;
            (&line[..open], labels, &line[close + 1..])
        }
        _ => {
            let (name, rest) = line.split_once(' ')?;
            (name, Vec::new(), rest)
        }
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Index of the `}` closing the label set opened at `open`, skipping quoted values.
fn find_label_end(line: &str, open: usize) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line[open..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(open + i),
            _ => {}
        }
    }
    None
}

fn parse_labels(text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                other => value.push(other),
            }
        }
        let end = end?;
        labels.push((key.trim().to_string(), value));
        rest = after[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    const TEXT: &str = r#"# HELP datamind_requests_total Requests.
# TYPE datamind_requests counter
datamind_requests_total{model="gpt-4o-mini",status="200"} 3
datamind_requests_total{model="gpt-4o-mini",status="404"} 1
datamind_requests_total{model="other",status="200"} 2
datamind_request_duration_seconds_bucket{model="gpt-4o-mini",le="+Inf"} 4
datamind_request_duration_seconds_count{model="gpt-4o-mini"} 4
datamind_deployment_in_flight{deployment="up1/m \"q\", x"} 0
datamind_up 1
# EOF
"#;

    #[test]
    fn sums_matching_series() {
        let m = Metrics::parse(TEXT);
        assert_eq!(m.sum("datamind_requests_total", &[]), 6.0);
        assert_eq!(
            m.sum("datamind_requests_total", &[("model", "gpt-4o-mini")]),
            4.0
        );
        assert_eq!(
            m.sum(
                "datamind_requests_total",
                &[("model", "gpt-4o-mini"), ("status", "200")]
            ),
            3.0
        );
        assert_eq!(m.sum("datamind_requests_total", &[("status", "500")]), 0.0);
        assert_eq!(m.sum("datamind_up", &[]), 1.0);
    }

    #[test]
    fn parses_escaped_labels_and_families() {
        let m = Metrics::parse(TEXT);
        let s = m.series("datamind_deployment_in_flight");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].label("deployment"), Some("up1/m \"q\", x"));
        assert!(m.has_family("datamind_request_duration_seconds"));
        assert!(m.has_family("datamind_requests_total"));
        assert!(!m.has_family("datamind_nothing"));
        let inf = m.series("datamind_request_duration_seconds_bucket");
        assert_eq!(inf[0].label("le"), Some("+Inf"));
    }
}
