//! The real rows the emulator reuses, embedded in the binary (gzip) so that
//! `pinstream emulate` works without `../shared`.

use std::io::Read;

static GEO: &[u8] = include_bytes!("../../../data/geolocation_data.csv.gz");
static USER: &[u8] = include_bytes!("../../../data/user_data.csv.gz");
static PINS: &[u8] = include_bytes!("../../../data/pin_sample.jsonl.gz");

/// One row of `geolocation_data` (values kept as their original text).
#[derive(Debug, Clone)]
pub struct GeoRow {
    pub timestamp: String,
    pub latitude: f64,
    pub longitude: f64,
    pub country: String,
}

/// One row of `user_data`.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub first_name: String,
    pub last_name: String,
    pub age: i64,
    pub date_joined: String,
}

/// Texts of real pins, for synthesised pin rows.
#[derive(Debug, Clone, Default)]
pub struct PinTexts {
    pub titles: Vec<String>,
    pub descriptions: Vec<String>,
    pub tags: Vec<String>,
    pub images: Vec<String>,
    pub posters: Vec<String>,
}

pub struct RealData {
    pub geo: Vec<GeoRow>,
    pub users: Vec<UserRow>,
    pub pins: PinTexts,
}

fn gunzip(b: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(b)
        .read_to_string(&mut s)
        .expect("embedded data is valid gzip");
    s
}

/// CSV rows without the header; the embedded files have no quoted fields.
fn csv_rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').collect())
}

impl RealData {
    pub fn load() -> RealData {
        let geo_text = gunzip(GEO);
        // columns: (pandas index), ind, timestamp, latitude, longitude, country
        let geo = csv_rows(&geo_text)
            .map(|c| GeoRow {
                timestamp: c[2].to_string(),
                latitude: c[3].parse().unwrap_or(0.0),
                longitude: c[4].parse().unwrap_or(0.0),
                country: c[5].to_string(),
            })
            .collect();
        let user_text = gunzip(USER);
        // columns: (pandas index), ind, first_name, last_name, age, date_joined
        let users = csv_rows(&user_text)
            .map(|c| UserRow {
                first_name: c[2].to_string(),
                last_name: c[3].to_string(),
                age: c[4].parse().unwrap_or(0),
                date_joined: c[5].to_string(),
            })
            .collect();
        let mut pins = PinTexts::default();
        for line in gunzip(PINS).lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let push = |field: &str, into: &mut Vec<String>, skip: &[&str]| {
                if let Some(s) = v.get(field).and_then(|x| x.as_str()) {
                    if !s.is_empty() && !skip.contains(&s) && !into.iter().any(|x| x == s) {
                        into.push(s.to_string());
                    }
                }
            };
            push("title", &mut pins.titles, &["No Title Data Available"]);
            push(
                "description",
                &mut pins.descriptions,
                &[
                    "No description available Story format",
                    "No description available",
                    "Untitled",
                ],
            );
            push("tag_list", &mut pins.tags, &["N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"]);
            push("image_src", &mut pins.images, &["Image src error."]);
            push("poster_name", &mut pins.posters, &["User Info Error"]);
        }
        RealData { geo, users, pins }
    }
}
