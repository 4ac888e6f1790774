//! Reference data as values: the province list (with time zones) and the agency list. The data
//! lives in files (`config/provinces.csv`, `config/agencies.csv`), never in code; this module
//! only parses their text, line by line, naming the line of any fault.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::UtcOffset;

use super::{AgencyCode, NodeId, ProvinceCode, RegionCode};

/// A fault in a reference file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {message}")]
pub struct ReferenceError {
    /// Which file.
    pub file: &'static str,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A province: code, name and time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Province {
    /// Kemendagri code.
    pub code: ProvinceCode,
    /// Name.
    pub name: String,
    /// `WIB`, `WITA` or `WIT`.
    pub zone: String,
    /// The zone's offset from UTC.
    pub offset: UtcOffset,
}

/// The province list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provinces(BTreeMap<ProvinceCode, Province>);

fn rows<'a>(
    file: &'static str,
    text: &'a str,
    header: &str,
    columns: usize,
) -> Result<Vec<(usize, Vec<&'a str>)>, ReferenceError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some((_, h)) if h.trim() == header => {}
        _ => {
            return Err(ReferenceError {
                file,
                line: 1,
                message: format!("expected header {header:?}"),
            });
        }
    }
    lines
        .map(|(i, l)| {
            let cells: Vec<&str> = l.split(',').map(str::trim).collect();
            if cells.len() == columns {
                Ok((i + 1, cells))
            } else {
                Err(ReferenceError {
                    file,
                    line: i + 1,
                    message: format!("expected {columns} columns"),
                })
            }
        })
        .collect()
}

impl Provinces {
    /// Parses `code,name,time_zone,utc_offset` rows.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        const FILE: &str = "provinces.csv";
        let mut map = BTreeMap::new();
        for (line, cells) in rows(FILE, text, "code,name,time_zone,utc_offset", 4)? {
            let err = |message: String| ReferenceError {
                file: FILE,
                line,
                message,
            };
            let [code, name, zone, offset] = cells.as_slice() else {
                return Err(err("expected 4 columns".into()));
            };
            let code = ProvinceCode::parse(code).map_err(|e| err(e.to_string()))?;
            let offset =
                parse_offset(offset).ok_or_else(|| err(format!("bad UTC offset {offset:?}")))?;
            let p = Province {
                code: code.clone(),
                name: (*name).to_owned(),
                zone: (*zone).to_owned(),
                offset,
            };
            if map.insert(code.clone(), p).is_some() {
                return Err(err(format!("duplicate province {code}")));
            }
        }
        Ok(Self(map))
    }

    /// Looks a province up.
    #[must_use]
    pub fn get(&self, code: &ProvinceCode) -> Option<&Province> {
        self.0.get(code)
    }

    /// Whether a region's province exists.
    #[must_use]
    pub fn knows_region(&self, region: &RegionCode) -> bool {
        self.0.contains_key(&region.province())
    }

    /// Number of provinces.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parses `+07:00`-style offsets.
#[must_use]
pub fn parse_offset(s: &str) -> Option<UtcOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1i8, s.get(1..)?),
        b'-' => (-1i8, s.get(1..)?),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// Administrative level of an agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgencyLevel {
    /// A ministry or national body (owned by the hub).
    National,
    /// A provincial agency.
    Province,
    /// A regency/city agency.
    Regency,
}

impl AgencyLevel {
    /// Wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::National => "national",
            Self::Province => "province",
            Self::Regency => "regency",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::National, Self::Province, Self::Regency]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

/// An agency (*instansi*) and the node that owns its tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agency {
    /// Code.
    pub code: AgencyCode,
    /// Name.
    pub name: String,
    /// Level.
    pub level: AgencyLevel,
    /// The region it serves (`00`-free: national agencies use the hub's region, `""` is not
    /// allowed; national agencies give `11`..`99` of their seat).
    pub region: RegionCode,
    /// The node that handles its tickets.
    pub owner: NodeId,
}

/// Parses `code,name,level,region,owner_node` rows.
pub fn parse_agencies(text: &str) -> Result<Vec<Agency>, ReferenceError> {
    const FILE: &str = "agencies.csv";
    let mut out: Vec<Agency> = Vec::new();
    for (line, cells) in rows(FILE, text, "code,name,level,region,owner_node", 5)? {
        let err = |message: String| ReferenceError {
            file: FILE,
            line,
            message,
        };
        let [code, name, level, region, owner] = cells.as_slice() else {
            return Err(err("expected 5 columns".into()));
        };
        let agency = Agency {
            code: AgencyCode::parse(code).map_err(|e| err(e.to_string()))?,
            name: (*name).to_owned(),
            level: AgencyLevel::parse(level).ok_or_else(|| {
                err(format!(
                    "level {level:?} must be national, province or regency"
                ))
            })?,
            region: RegionCode::parse(region).map_err(|e| err(e.to_string()))?,
            owner: NodeId::parse(owner).map_err(|e| err(e.to_string()))?,
        };
        if out.iter().any(|a| a.code == agency.code) {
            return Err(err(format!("duplicate agency {}", agency.code)));
        }
        out.push(agency);
    }
    Ok(out)
}
