//! The lengths of `network.nodes`, `network.links` and `timeline`, read without building the JSON tree, so
//! that an absurdly large scenario is refused before it takes gigabytes of memory. Written here
//! because serde has no "count this array" deserializer; everything else is skipped with
//! `IgnoredAny`.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Lengths found (0 where absent or not an array).
#[derive(Default)]
pub(crate) struct Sizes {
    pub nodes: usize,
    pub links: usize,
    pub timeline: usize,
}

impl<'de> Deserialize<'de> for Sizes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = Sizes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scenario object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Sizes, A::Error> {
                let mut sizes = Sizes::default();
                let mut timeline = 0;
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "network" => sizes = m.next_value::<Network>()?.0,
                        "timeline" => timeline = m.next_value::<Count>()?.0,
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                sizes.timeline = timeline;
                Ok(sizes)
            }
        }
        d.deserialize_map(Top)
    }
}

/// The `network` object's array lengths.
struct Network(Sizes);

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Network;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a network object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Network, A::Error> {
                let mut s = Sizes::default();
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "nodes" => s.nodes = m.next_value::<Count>()?.0,
                        "links" => s.links = m.next_value::<Count>()?.0,
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Network(s))
            }
        }
        d.deserialize_map(V)
    }
}

/// An array's length; any other value counts 0 (the typed parse reports it).
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while a.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Count, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Count(0))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_str<E>(self, _: &str) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_unit<E>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
        }
        d.deserialize_any(V)
    }
}
