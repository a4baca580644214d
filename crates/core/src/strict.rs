//! Reading what people write: objects only where a struct is expected, names only where an
//! enum is expected, and no `null` where a value is expected.
//!
//! serde's derived `Deserialize` lets a struct be read from a sequence of its fields in order
//! (for formats without field names), and serde_json offers a JSON array to it, so
//! `"storage": [50]` would silently be read as `{"latency": 50}`. An `Option` field takes `null`
//! as "absent", so `"termination": null` would silently be the default. serde has no attribute
//! against either (serde-rs/serde#1587; its maintainer suggests a deserializer that refuses
//! them), so [`Strict`] wraps a deserializer and every deserializer it hands on:
//!
//! * a struct accepts only an object; anything else is "expected an object (NOUN), found …",
//!   where NOUN names the struct in the user's words (see [`Nouns`]);
//! * an enum accepts only a string naming one of its (unit) variants, and a wrong type is
//!   "expected one of "a", "b", found …";
//! * an `Option` takes `null` only where the field is marked with [`nullable`] (a documented
//!   meaning such as "no limit"); elsewhere `null` gets the message the inner type gives it
//!   ("expected a number, found null").
//!
//! The rules come from the deserializer, not from the types, so every struct read through
//! [`Strict`] follows them, including ones added later. Types read without it (a results
//! file, a test's `serde_json::from_value`) behave as serde's defaults do.

use serde::de::value::{BorrowedStrDeserializer, StrDeserializer, StringDeserializer};
use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use std::fmt;
use std::marker::PhantomData;

/// Names a struct, given its serde name, in the user's words ("a link"), for the message
/// "expected an object (a link), found an array". `None`: just "an object".
pub type Nouns = fn(&str) -> Option<&'static str>;

/// The newtype name through which [`nullable`] tells [`Strict`] that its `Option` may be null.
const NULLABLE: &str = "$coracle::strict::nullable";

/// A deserializer that applies the rules above to everything read through it.
pub struct Strict<D> {
    de: D,
    nouns: Nouns,
    /// The next `Option` may be `null` (set by [`nullable`] for one level only).
    nulls: bool,
}

impl<D> Strict<D> {
    /// Wraps `de`; `nouns` names structs in messages.
    pub fn new(de: D, nouns: Nouns) -> Self {
        Strict {
            de,
            nouns,
            nulls: false,
        }
    }
}

/// For `#[serde(deserialize_with = "nullable")]` on an `Option` field whose `null` is
/// documented to mean something ("no limit", "never"): read through [`Strict`], that field
/// alone takes `null` (as `None`).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a value or null")
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            Option::<T>::deserialize(d)
        }
    }
    d.deserialize_newtype_struct(NULLABLE, V(PhantomData))
}

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
            self.de.$method(Any { v, nouns: self.nouns })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        if self.nulls {
            self.de.deserialize_option(Any {
                v,
                nouns: self.nouns,
            })
        } else {
            self.de.deserialize_option(NoNull {
                v,
                nouns: self.nouns,
            })
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_unit_struct(
            name,
            Any {
                v,
                nouns: self.nouns,
            },
        )
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        if name == NULLABLE {
            self.de.deserialize_newtype_struct(
                name,
                Nullable {
                    v,
                    nouns: self.nouns,
                },
            )
        } else {
            self.de.deserialize_newtype_struct(
                name,
                Any {
                    v,
                    nouns: self.nouns,
                },
            )
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, D::Error> {
        self.de.deserialize_tuple(
            len,
            Any {
                v,
                nouns: self.nouns,
            },
        )
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_tuple_struct(
            name,
            len,
            Any {
                v,
                nouns: self.nouns,
            },
        )
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_struct(
            name,
            fields,
            Struct {
                v,
                name,
                nouns: self.nouns,
            },
        )
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        // Through `deserialize_any`, so that a wrong type gets this visitor's "expected one of
        // …, found …" (serde_json's own answer to a number here is a bare "expected value").
        self.de.deserialize_any(Names { v, variants })
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

/// Forwards everything, wrapping what it hands on.
struct Any<V> {
    v: V,
    nouns: Nouns,
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, x: $ty) -> Result<V::Value, E> {
            self.v.$method(x)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Any<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.v.expecting(f)
    }

    forward_visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.v.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.v.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.v.visit_some(Strict::new(d, self.nouns))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.v.visit_newtype_struct(Strict::new(d, self.nouns))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
        self.v.visit_seq(Seq {
            a,
            nouns: self.nouns,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
        self.v.visit_map(Map {
            a,
            nouns: self.nouns,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
        self.v.visit_enum(Enum {
            a,
            nouns: self.nouns,
        })
    }
}

/// A struct: an object, nothing else.
struct Struct<V> {
    v: V,
    name: &'static str,
    nouns: Nouns,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Struct<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.nouns)(self.name) {
            Some(noun) => write!(f, "an object ({noun})"),
            None => f.write_str("an object"),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
        self.v.visit_map(Map {
            a,
            nouns: self.nouns,
        })
    }
}

/// An enum of unit variants: one of their names, as a string.
struct Names<V> {
    v: V,
    variants: &'static [&'static str],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Names<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.variants.is_empty() {
            return self.v.expecting(f);
        }
        f.write_str("one of ")?;
        for (i, name) in self.variants.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "\"{name}\"")?;
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<V::Value, E> {
        self.v.visit_enum(StrDeserializer::<E>::new(s))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<V::Value, E> {
        self.v.visit_enum(BorrowedStrDeserializer::<E>::new(s))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<V::Value, E> {
        self.v.visit_enum(StringDeserializer::<E>::new(s))
    }
}

/// An `Option` that is not [`nullable`]: `null` is refused. To say what was expected, `null` is
/// offered to the inner type, which refuses it with its own "expected …"; a type that would
/// take it (`serde_json::Value`, or `serde_json::Map`, which reads `null` as empty) gets a
/// plain "expected a value other than null".
struct NoNull<V> {
    v: V,
    nouns: Nouns,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for NoNull<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.v.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.v.visit_some(Strict::new(
            de::value::UnitDeserializer::<E>::new(),
            self.nouns,
        ))?;
        Err(E::invalid_type(
            de::Unexpected::Unit,
            &"a value other than null",
        ))
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.v.visit_some(Strict::new(d, self.nouns))
    }
}

/// The newtype of [`nullable`]: its content may be `null`.
struct Nullable<V> {
    v: V,
    nouns: Nouns,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Nullable<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.v.expecting(f)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.v.visit_newtype_struct(Strict {
            de: d,
            nouns: self.nouns,
            nulls: true,
        })
    }
}

/// Hands each value on through [`Strict`].
struct Seed<S> {
    s: S,
    nouns: Nouns,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.s.deserialize(Strict::new(d, self.nouns))
    }
}

struct Seq<A> {
    a: A,
    nouns: Nouns,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<A> {
    type Error = A::Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        s: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.a.next_element_seed(Seed {
            s,
            nouns: self.nouns,
        })
    }
    fn size_hint(&self) -> Option<usize> {
        self.a.size_hint()
    }
}

struct Map<A> {
    a: A,
    nouns: Nouns,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        s: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.a.next_key_seed(Seed {
            s,
            nouns: self.nouns,
        })
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, s: T) -> Result<T::Value, A::Error> {
        self.a.next_value_seed(Seed {
            s,
            nouns: self.nouns,
        })
    }
    fn size_hint(&self) -> Option<usize> {
        self.a.size_hint()
    }
}

struct Enum<A> {
    a: A,
    nouns: Nouns,
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        s: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let nouns = self.nouns;
        let (value, a) = self.a.variant_seed(Seed { s, nouns })?;
        Ok((value, Variant { a, nouns }))
    }
}

struct Variant<A> {
    a: A,
    nouns: Nouns,
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<A> {
    type Error = A::Error;
    fn unit_variant(self) -> Result<(), A::Error> {
        self.a.unit_variant()
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, s: T) -> Result<T::Value, A::Error> {
        self.a.newtype_variant_seed(Seed {
            s,
            nouns: self.nouns,
        })
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, A::Error> {
        self.a.tuple_variant(
            len,
            Any {
                v,
                nouns: self.nouns,
            },
        )
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, A::Error> {
        self.a.struct_variant(
            fields,
            Struct {
                v,
                name: "",
                nouns: self.nouns,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        x: f64,
    }

    #[derive(Deserialize, Debug, PartialEq, Clone, Copy)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Red,
        Blue,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default)]
        one: Option<Inner>,
        #[serde(default)]
        many: Vec<Inner>,
        #[serde(default)]
        by_name: BTreeMap<String, Inner>,
        #[serde(default)]
        kind: Option<Kind>,
        #[serde(default)]
        n: Option<f64>,
        #[serde(default, deserialize_with = "nullable")]
        limit: Option<u64>,
        #[serde(default)]
        any: Option<serde_json::Value>,
    }

    fn nouns(name: &str) -> Option<&'static str> {
        (name == "Inner").then_some("an inner thing")
    }

    fn read(text: &str) -> Result<Outer, String> {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let from_value = Outer::deserialize(Strict::new(v, nouns)).map_err(|e| e.to_string());
        let mut de = serde_json::Deserializer::from_str(text);
        let from_text = Outer::deserialize(Strict::new(&mut de, nouns)).map_err(|e| {
            let s = e.to_string();
            s.split(" at line ").next().unwrap_or(&s).to_string()
        });
        assert_eq!(from_value, from_text, "{text}");
        from_value
    }

    #[test]
    fn objects_are_read_as_before() {
        let o = read(
            r#"{"one": {"x": 1}, "many": [{"x": 2}], "by_name": {"a": {"x": 3}},
                "kind": "blue", "n": 4, "limit": 5, "any": []}"#,
        )
        .unwrap();
        assert_eq!(o.one, Some(Inner { x: 1.0 }));
        assert_eq!(o.many, vec![Inner { x: 2.0 }]);
        assert_eq!(o.by_name["a"], Inner { x: 3.0 });
        assert_eq!(o.kind, Some(Kind::Blue));
        assert_eq!(o.limit, Some(5));
        assert_eq!(o.any, Some(serde_json::json!([])));
    }

    #[test]
    fn arrays_are_no_structs_at_any_depth() {
        let expected = "invalid type: sequence, expected an object (an inner thing)";
        for text in [
            r#"{"one": [1]}"#,
            r#"{"many": [[2]]}"#,
            r#"{"by_name": {"a": [3]}}"#,
        ] {
            assert_eq!(read(text).unwrap_err(), expected, "{text}");
        }
        assert_eq!(
            read("[null]").unwrap_err(),
            "invalid type: sequence, expected an object"
        );
        assert_eq!(
            read(r#"{"one": 5}"#).unwrap_err(),
            "invalid type: integer `5`, expected an object (an inner thing)"
        );
    }

    #[test]
    fn enums_take_names_only() {
        assert_eq!(
            read(r#"{"kind": 5}"#).unwrap_err(),
            "invalid type: integer `5`, expected one of \"red\", \"blue\""
        );
        assert_eq!(
            read(r#"{"kind": {"red": null}}"#).unwrap_err(),
            "invalid type: map, expected one of \"red\", \"blue\""
        );
        assert!(
            read(r#"{"kind": "green"}"#)
                .unwrap_err()
                .starts_with("unknown variant `green`")
        );
    }

    #[test]
    fn null_only_where_nullable() {
        assert_eq!(
            read(r#"{"n": null}"#).unwrap_err(),
            "invalid type: null, expected f64"
        );
        assert_eq!(
            read(r#"{"one": null}"#).unwrap_err(),
            "invalid type: null, expected an object (an inner thing)"
        );
        assert_eq!(
            read(r#"{"kind": null}"#).unwrap_err(),
            "invalid type: null, expected one of \"red\", \"blue\""
        );
        // Even where the inner type would take it.
        assert_eq!(
            read(r#"{"any": null}"#).unwrap_err(),
            "invalid type: null, expected a value other than null"
        );
        assert_eq!(read(r#"{"limit": null}"#).unwrap().limit, None);
        assert_eq!(read(r#"{}"#).unwrap().limit, None);
        // Without Strict, `nullable` is an ordinary Option.
        let o: Outer = serde_json::from_str(r#"{"limit": null, "n": null}"#).unwrap();
        assert_eq!((o.limit, o.n), (None, None));
    }
}
