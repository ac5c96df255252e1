//! A deterministic generator of realistic deliveries (spec §1).
//!
//! Post `k` (k = 0, 1, 2, …) uses row `r = k mod 11001` of the real
//! geolocation and user tables (the original emulator only picks rows
//! 0..=11000) with `ind = r + 11154·⌊k / 11001⌋`, so the first 11,001 posts
//! carry their real `ind` and later copies are shifted past 11,153. Pin rows
//! are synthesised per `ind` from the real distributions of the full table
//! (categories, media kinds, placeholder frequencies; see
//! `shared/data/real/README.md`) and real pin texts; each user (first name,
//! last name, age, date joined) posts under one poster name with one follower
//! count. Everything is a function of `(seed, ind)`, so a re-send of an `ind`
//! is byte-for-byte the same row except for the timestamp form, which each
//! delivery picks anew (`"2020-08-28 03:52:47"` or `"2020-08-28T03:52:47"`).
//!
//! Deliveries: new posts in order, and with probability `resend` a re-send
//! of an already delivered post (picked with replacement). With the default
//! 0.23, N posts give about 1.3·N deliveries = 3.9·N records.

mod data;
pub mod http;
pub mod kafka;
mod writer;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub use data::RealData;
pub use writer::{ArchiveWriter, Compression, Layout, WriterOptions};

/// Rows the original emulator picks from.
pub const ROWS: u64 = 11_001;
/// Size of the real tables: shifted copies start past the last real `ind`.
pub const TABLE: u64 = 11_154;

/// Category frequencies of the full pin table.
const CATEGORIES: [(&str, u32); 13] = [
    ("christmas", 999),
    ("tattoos", 970),
    ("quotes", 910),
    ("art", 892),
    ("education", 863),
    ("home-decor", 861),
    ("travel", 859),
    ("mens-fashion", 852),
    ("vehicles", 838),
    ("diy-and-crafts", 830),
    ("finance", 786),
    ("event-planning", 748),
    ("beauty", 746),
];
const TOTAL_PINS: f64 = 11_154.0;

#[derive(Debug, Serialize)]
pub struct PinRecord {
    pub index: i64,
    pub unique_id: String,
    pub title: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poster_name: Option<String>,
    pub follower_count: String,
    pub tag_list: String,
    pub is_image_or_video: String,
    pub image_src: String,
    pub downloaded: i64,
    pub save_location: String,
    pub category: String,
}

#[derive(Debug, Serialize)]
pub struct GeoRecord {
    pub ind: i64,
    pub timestamp: String,
    pub latitude: f64,
    pub longitude: f64,
    pub country: String,
}

#[derive(Debug, Serialize)]
pub struct UserRecord {
    pub ind: i64,
    pub first_name: String,
    pub last_name: String,
    pub age: i64,
    pub date_joined: String,
}

/// One emulator step: the same `ind` sent to the three topics.
#[derive(Debug)]
pub struct Delivery {
    pub ind: i64,
    pub pin: String,
    pub geo: String,
    pub user: String,
}

/// Which topic suffixes a delivery's records go to, in order.
pub const TOPICS: [&str; 3] = ["pin", "geo", "user"];

fn mix(a: u64, b: u64) -> u64 {
    // splitmix64 of the pair: independent streams per (seed, ind).
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn str_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn chance(rng: &mut ChaCha8Rng, count: f64) -> bool {
    rng.gen::<f64>() < count / TOTAL_PINS
}

/// Formats a follower count as the site shows it: `437`, `27k`, `1.5k`, `2M`.
fn follower_text(rng: &mut ChaCha8Rng) -> String {
    let r: f64 = rng.gen();
    if r < 0.12 {
        rng.gen_range(0..1000).to_string()
    } else if r < 0.88 {
        let n = 10f64.powf(rng.gen_range(0.0..3.0)).floor() as u32;
        if rng.gen::<f64>() < 0.03 {
            format!("{}.{}k", n.max(1), rng.gen_range(1..10))
        } else {
            format!("{}k", n.max(1))
        }
    } else {
        format!("{}M", rng.gen_range(1..=8))
    }
}

/// The generator.
pub struct Emulator {
    data: RealData,
    seed: u64,
}

impl Emulator {
    pub fn new(seed: u64) -> Emulator {
        Emulator {
            data: RealData::load(),
            seed,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The `ind` of post `k`.
    pub fn ind_of(k: u64) -> i64 {
        ((k % ROWS) + TABLE * (k / ROWS)) as i64
    }

    fn row_of(ind: i64) -> usize {
        (ind as u64 % TABLE) as usize
    }

    /// Poster name and follower count of a user (stable per user).
    fn poster(&self, u: &data::UserRow) -> (Option<String>, String) {
        let key = format!("{}|{}|{}|{}", u.first_name, u.last_name, u.age, u.date_joined);
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, str_hash(&key)));
        if chance(&mut rng, 88.0) {
            return (Some("User Info Error".into()), "User Info Error".into());
        }
        let name = if rng.gen::<f64>() < 0.5 || self.data.pins.posters.is_empty() {
            format!("{} {}", u.first_name, u.last_name)
        } else {
            let p = &self.data.pins.posters;
            p[rng.gen_range(0..p.len())].clone()
        };
        (Some(name), follower_text(&mut rng))
    }

    /// The pin row of an `ind` (without re-send variation: it has none).
    pub fn pin(&self, ind: i64) -> PinRecord {
        let u = &self.data.users[Self::row_of(ind)];
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed ^ 0x5049_4e00, ind as u64));
        let pick = |rng: &mut ChaCha8Rng, v: &[String]| {
            if v.is_empty() {
                String::new()
            } else {
                v[rng.gen_range(0..v.len())].clone()
            }
        };
        let total: u32 = CATEGORIES.iter().map(|(_, n)| n).sum();
        let mut x = rng.gen_range(0..total);
        let mut category = CATEGORIES[0].0;
        for (c, n) in CATEGORIES {
            if x < n {
                category = c;
                break;
            }
            x -= n;
        }
        let media: f64 = rng.gen::<f64>() * 11_147.0;
        let kind = if media < 9920.0 {
            "image"
        } else if media < 9920.0 + 895.0 {
            "multi-video(story page format)"
        } else {
            "video"
        };
        let description = if kind.starts_with("multi") {
            "No description available Story format".to_string()
        } else if chance(&mut rng, 182.0) {
            "No description available".to_string()
        } else if chance(&mut rng, 20.0) {
            "Untitled".to_string()
        } else {
            pick(&mut rng, &self.data.pins.descriptions)
        };
        let (poster, followers) = self.poster(u);
        let older = rng.gen::<f64>() < 0.02; // older rows have no poster_name
        let uuid: u128 = rng.gen();
        let uuid = format!(
            "{:032x}",
            (uuid & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62)
        );
        PinRecord {
            index: ind,
            unique_id: format!(
                "{}-{}-{}-{}-{}",
                &uuid[..8],
                &uuid[8..12],
                &uuid[12..16],
                &uuid[16..20],
                &uuid[20..]
            ),
            title: if chance(&mut rng, 88.0) {
                "No Title Data Available".into()
            } else if chance(&mut rng, 30.0) {
                String::new()
            } else {
                pick(&mut rng, &self.data.pins.titles)
            },
            description,
            poster_name: if older { None } else { poster },
            follower_count: followers,
            tag_list: if chance(&mut rng, 171.0) {
                "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e".into()
            } else {
                pick(&mut rng, &self.data.pins.tags)
            },
            is_image_or_video: kind.into(),
            image_src: if chance(&mut rng, 323.0) {
                "Image src error.".into()
            } else {
                pick(&mut rng, &self.data.pins.images)
            },
            downloaded: i64::from(!chance(&mut rng, 331.0)),
            save_location: format!("Local save in /data/{category}"),
            category: category.into(),
        }
    }

    /// The geo row of an `ind`, with the timestamp in the chosen form.
    pub fn geo(&self, ind: i64, iso: bool) -> GeoRecord {
        let g = &self.data.geo[Self::row_of(ind)];
        GeoRecord {
            ind,
            timestamp: ts_form(&g.timestamp, iso),
            latitude: g.latitude,
            longitude: g.longitude,
            country: g.country.clone(),
        }
    }

    pub fn user(&self, ind: i64, iso: bool) -> UserRecord {
        let u = &self.data.users[Self::row_of(ind)];
        UserRecord {
            ind,
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            age: u.age,
            date_joined: ts_form(&u.date_joined, iso),
        }
    }

    /// The deliveries for `posts` posts, with re-sends at rate `resend`.
    pub fn deliveries(&self, posts: u64, resend: f64) -> impl Iterator<Item = Delivery> + '_ {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, 0xDE11));
        let mut next = 0u64;
        std::iter::from_fn(move || {
            // Once every post is out, the stream ends at the first non-resend.
            let k = if next > 0 && rng.gen::<f64>() < resend {
                rng.gen_range(0..next)
            } else if next < posts {
                next += 1;
                next - 1
            } else {
                return None;
            };
            let ind = Self::ind_of(k);
            let pin = serde_json::to_string(&self.pin(ind)).expect("serializable");
            let geo = serde_json::to_string(&self.geo(ind, rng.gen())).expect("serializable");
            let user = serde_json::to_string(&self.user(ind, rng.gen())).expect("serializable");
            Some(Delivery { ind, pin, geo, user })
        })
    }
}

fn ts_form(ts: &str, iso: bool) -> String {
    if iso {
        ts.replacen(' ', "T", 1)
    } else {
        ts.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_resends_are_identical_rows() {
        let e = Emulator::new(42);
        let a: Vec<Delivery> = e.deliveries(500, 0.23).collect();
        let b: Vec<Delivery> = Emulator::new(42).deliveries(500, 0.23).collect();
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.pin == y.pin && x.geo == y.geo));
        let distinct: std::collections::HashSet<i64> = a.iter().map(|d| d.ind).collect();
        assert_eq!(distinct.len(), 500);
        assert!(a.len() > 560 && a.len() < 760, "{}", a.len());
        for d in &a {
            let again = a.iter().find(|x| x.ind == d.ind).unwrap();
            assert_eq!(d.pin, again.pin);
        }
        let other: Vec<Delivery> = Emulator::new(43).deliveries(50, 0.0).collect();
        assert_ne!(other[5].pin, a[5].pin);
    }

    #[test]
    fn inds_shift_past_the_real_table() {
        assert_eq!(Emulator::ind_of(0), 0);
        assert_eq!(Emulator::ind_of(11_000), 11_000);
        assert_eq!(Emulator::ind_of(11_001), 11_154);
        assert_eq!(Emulator::row_of(11_154), 0);
    }

    #[test]
    fn real_rows_are_reused() {
        let e = Emulator::new(1);
        let g = e.geo(0, false);
        assert_eq!(
            (g.country.as_str(), g.timestamp.as_str()),
            ("Albania", "2019-01-01 07:21:13")
        );
        assert_eq!(e.geo(0, true).timestamp, "2019-01-01T07:21:13");
        let u = e.user(11_154 + 2, false);
        assert_eq!((u.first_name.as_str(), u.age), ("Jesse", 32));
    }
}
