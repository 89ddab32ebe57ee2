//! A report request's query string, as the API's `GET …/report` and the
//! dashboard's experiment page and CSV export all take it: read once here
//! ([`ReportQuery::parse`]), then validated into [`ReportOptions`].
//!
//! An empty value counts as not given, so that a GET form's blank inputs (the
//! dashboard's date fields, a select left at "any") leave the report as it is.

use super::ReportOptions;
use crate::domain::totals::UserFilter;
use crate::domain::ValidationError;
use crate::report::Correction;

/// How a report is sent: the API answers JSON unless asked for CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportFormat {
    #[default]
    Json,
    Csv,
}

/// The query string as given: `segment` and `dimension` may repeat, the rest may not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportQuery {
    pub format: Option<String>,
    pub correction: Option<String>,
    pub series: Option<String>,
    /// Each `dimension` value, each possibly comma-separated (`country,device`).
    pub dimensions: Vec<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Each `segment` value, `DIMENSION:VALUE`.
    pub segments: Vec<String>,
}

impl ReportQuery {
    /// Reads the pairs of a query string; unknown names are ignored.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, ValidationError> {
        let mut query = ReportQuery::default();
        for (name, value) in pairs.into_iter().filter(|(_, value)| !value.is_empty()) {
            let single = match name.as_str() {
                "segment" => {
                    query.segments.push(value);
                    continue;
                }
                "dimension" => {
                    query.dimensions.push(value);
                    continue;
                }
                "format" => &mut query.format,
                "correction" => &mut query.correction,
                "series" => &mut query.series,
                "from" => &mut query.from,
                "to" => &mut query.to,
                _ => continue,
            };
            if single.replace(value).is_some() {
                return Err(ValidationError::single(name, "is given more than once"));
            }
        }
        Ok(query)
    }

    pub fn format(&self) -> Result<ReportFormat, ValidationError> {
        match self.format.as_deref() {
            None | Some("json") => Ok(ReportFormat::Json),
            Some("csv") => Ok(ReportFormat::Csv),
            Some(_) => Err(ValidationError::single("format", "must be json or csv")),
        }
    }

    /// The report these parameters ask for; whether the experiment keeps the
    /// dimensions named is checked when the report is built.
    pub fn options(&self) -> Result<ReportOptions, ValidationError> {
        let correction = self
            .correction
            .as_deref()
            .map(|c| {
                Correction::parse(c)
                    .ok_or_else(|| ValidationError::single("correction", "must be holm or bh"))
            })
            .transpose()?;
        let daily_series = match self.series.as_deref() {
            None => false,
            Some("daily") => true,
            Some(_) => return Err(ValidationError::single("series", "must be daily")),
        };
        let filter = UserFilter::parse(self.from.as_deref(), self.to.as_deref(), &self.segments)?;
        Ok(ReportOptions {
            correction,
            filter,
            dimensions: self.breakdown(),
            daily_series,
        })
    }

    /// The dimensions to break down by, in the order given.
    pub fn breakdown(&self) -> Vec<String> {
        self.dimensions
            .iter()
            .flat_map(|d| d.split(','))
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    #[test]
    fn blank_values_are_not_given_and_dimensions_may_repeat() {
        let query = ReportQuery::parse(pairs(
            "from=&to=2026-12-08&segment=&segment=country:CN&dimension=country&dimension=",
        ))
        .unwrap();
        assert_eq!(query.from, None);
        assert_eq!(query.segments, ["country:CN"]);
        let options = query.options().unwrap();
        assert_eq!(options.dimensions, ["country"]);
        assert!(options.filter.to.is_some());
        let two = ReportQuery::parse(pairs("dimension=country&dimension=device")).unwrap();
        assert_eq!(two.breakdown(), ["country", "device"]);
        let joined = ReportQuery::parse(pairs("dimension=country, device")).unwrap();
        assert_eq!(joined.options().unwrap().dimensions.len(), 2);
    }

    #[test]
    fn single_parameters_may_not_repeat() {
        let repeated = ReportQuery::parse(pairs("to=2026-12-01&to=2026-12-02")).unwrap_err();
        assert_eq!(repeated.problems[0].field, "to");
        let format = ReportQuery::parse(pairs("format=xml")).unwrap();
        assert_eq!(format.format().unwrap_err().problems[0].field, "format");
        assert_eq!(ReportQuery::default().format().unwrap(), ReportFormat::Json);
    }
}
