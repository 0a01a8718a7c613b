//! serde to and from the SDK's own `AttributeValue`, with `serde_dynamo`'s mapping.
//!
//! The state table's items used to go through `serde_dynamo`, which builds its own attribute
//! maps and then converts them into the SDK's (and the SDK's into its own on the way back): every
//! map was allocated and every attribute name hashed twice, about a fifth of a per-essay
//! record's CPU (issue 15, docs/benchmarks.md). This module writes and reads the SDK's types
//! directly and keeps `serde_dynamo`'s mapping exactly, so items are the same attribute for
//! attribute whichever wrote them (tests below compare both over every item type):
//!
//! | serde | attribute |
//! |---|---|
//! | integers, floats | `N` (Rust's `Display` of the number) |
//! | `str`, `char`, unit variant | `S` |
//! | `bool` | `BOOL` |
//! | `None`, `()`, unit struct | `NULL: true` |
//! | bytes | `B` |
//! | sequence, tuple | `L` |
//! | struct, map | `M` |
//! | newtype / tuple / struct variant | `M` of one entry, the variant's name |
//!
//! Decoding also accepts the set types (`SS`, `NS`, `BS`) as sequences, as `serde_dynamo`
//! does; nothing here writes them.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::{ser, Serialize};
use std::collections::HashMap;
use std::fmt::Display;

/// An attribute map as the SDK holds it.
pub type Map = HashMap<String, AttributeValue>;

/// A value that cannot be written as, or read from, an attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

impl de::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

fn expected(what: &str, found: &AttributeValue) -> Error {
    let kind = match found {
        AttributeValue::B(_) => "B",
        AttributeValue::Bool(_) => "BOOL",
        AttributeValue::Bs(_) => "BS",
        AttributeValue::L(_) => "L",
        AttributeValue::M(_) => "M",
        AttributeValue::N(_) => "N",
        AttributeValue::Ns(_) => "NS",
        AttributeValue::Null(_) => "NULL",
        AttributeValue::S(_) => "S",
        AttributeValue::Ss(_) => "SS",
        _ => "an unknown type",
    };
    Error(format!("expected {what}, found {kind}"))
}

/// `value` as an attribute map (it must serialize as a struct or map).
pub fn to_map<T: Serialize + ?Sized>(value: &T) -> Result<Map, Error> {
    to_map_reserving(value, 0)
}

/// [`to_map`] with room for `additional` more attributes (an item's keys, added next without
/// growing the map).
pub fn to_map_reserving<T: Serialize + ?Sized>(value: &T, additional: usize) -> Result<Map, Error> {
    match value.serialize(Serializer {
        reserve: additional,
    })? {
        AttributeValue::M(map) => Ok(map),
        other => Err(expected("a struct or map", &other)),
    }
}

/// `value` as one attribute.
pub fn to_attribute_value<T: Serialize + ?Sized>(value: &T) -> Result<AttributeValue, Error> {
    value.serialize(NESTED)
}

/// A `T` from an attribute map (taken: its strings move into `T`).
pub fn from_map<T: DeserializeOwned>(map: Map) -> Result<T, Error> {
    T::deserialize(Deserializer(AttributeValue::M(map)))
}

/// A `T` from one attribute.
pub fn from_attribute_value<T: DeserializeOwned>(value: AttributeValue) -> Result<T, Error> {
    T::deserialize(Deserializer(value))
}

// ---------------------------------------------------------------------------------- write

/// Writes SDK attribute values; the outermost struct or map gets room for `reserve` more
/// entries.
#[derive(Clone, Copy, Debug, Default)]
pub struct Serializer {
    reserve: usize,
}

/// What nested values are written with.
const NESTED: Serializer = Serializer { reserve: 0 };

fn number(v: impl Display) -> Result<AttributeValue, Error> {
    Ok(AttributeValue::N(v.to_string()))
}

fn one_entry(key: &str, value: AttributeValue) -> AttributeValue {
    let mut map = HashMap::with_capacity(1);
    map.insert(key.to_string(), value);
    AttributeValue::M(map)
}

impl ser::Serializer for Serializer {
    type Ok = AttributeValue;
    type Error = Error;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Seq;
    type SerializeMap = MapWriter;
    type SerializeStruct = MapWriter;
    type SerializeStructVariant = MapWriter;

    fn serialize_bool(self, v: bool) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_i16(self, v: i16) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_i32(self, v: i32) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_i64(self, v: i64) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_i128(self, v: i128) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_u8(self, v: u8) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_u16(self, v: u16) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_u32(self, v: u32) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_u64(self, v: u64) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_u128(self, v: u128) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_f32(self, v: f32) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_f64(self, v: f64) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_char(self, v: char) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::S(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::S(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::B(Blob::new(v)))
    }
    fn serialize_none(self) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Null(true))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<AttributeValue, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Null(true))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Null(true))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::S(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<AttributeValue, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<AttributeValue, Error> {
        Ok(one_entry(variant, value.serialize(NESTED)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, Error> {
        Ok(Seq::new(len.unwrap_or(0), None))
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, Error> {
        Ok(Seq::new(len, None))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Seq, Error> {
        Ok(Seq::new(len, None))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Seq, Error> {
        Ok(Seq::new(len, Some(variant)))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapWriter, Error> {
        Ok(MapWriter::new(len.unwrap_or(0) + self.reserve, None))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapWriter, Error> {
        Ok(MapWriter::new(len + self.reserve, None))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapWriter, Error> {
        Ok(MapWriter::new(len, Some(variant)))
    }
}

/// A list being written (of a tuple variant: wrapped in its variant's name at the end).
pub struct Seq {
    items: Vec<AttributeValue>,
    variant: Option<&'static str>,
}

impl Seq {
    fn new(len: usize, variant: Option<&'static str>) -> Self {
        Seq {
            items: Vec::with_capacity(len),
            variant,
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.items.push(value.serialize(NESTED)?);
        Ok(())
    }

    fn finish(self) -> Result<AttributeValue, Error> {
        let list = AttributeValue::L(self.items);
        Ok(match self.variant {
            Some(variant) => one_entry(variant, list),
            None => list,
        })
    }
}

/// serde's four list-like serializer traits, each pushing one element and finishing the list.
macro_rules! list_writer {
    ($($trait:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$trait for Seq {
            type Ok = AttributeValue;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.push(value)
            }
            fn end(self) -> Result<AttributeValue, Error> {
                self.finish()
            }
        }
    )*};
}

list_writer! {
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
}

/// A map being written (of a struct variant: wrapped in its variant's name at the end).
pub struct MapWriter {
    map: Map,
    next_key: Option<String>,
    variant: Option<&'static str>,
}

impl MapWriter {
    fn new(len: usize, variant: Option<&'static str>) -> Self {
        MapWriter {
            map: HashMap::with_capacity(len),
            next_key: None,
            variant,
        }
    }

    fn finish(self) -> Result<AttributeValue, Error> {
        let map = AttributeValue::M(self.map);
        Ok(match self.variant {
            Some(variant) => one_entry(variant, map),
            None => map,
        })
    }
}

impl ser::SerializeMap for MapWriter {
    type Ok = AttributeValue;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.next_key = Some(map_key(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .next_key
            .take()
            .ok_or_else(|| Error("a map value without its key".into()))?;
        self.map.insert(key, value.serialize(NESTED)?);
        Ok(())
    }
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), Error> {
        let key = map_key(key)?;
        self.map.insert(key, value.serialize(NESTED)?);
        Ok(())
    }
    fn end(self) -> Result<AttributeValue, Error> {
        self.finish()
    }
}

/// serde's two struct serializer traits: one attribute per field.
macro_rules! struct_writer {
    ($($trait:ident),*) => {$(
        impl ser::$trait for MapWriter {
            type Ok = AttributeValue;
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.map.insert(key.to_string(), value.serialize(NESTED)?);
                Ok(())
            }
            fn end(self) -> Result<AttributeValue, Error> {
                self.finish()
            }
        }
    )*};
}

struct_writer!(SerializeStruct, SerializeStructVariant);

/// A map key: strings, numbers and unit variants as text, as `serde_dynamo` writes them.
fn map_key<T: Serialize + ?Sized>(key: &T) -> Result<String, Error> {
    match key.serialize(NESTED)? {
        AttributeValue::S(s) | AttributeValue::N(s) => Ok(s),
        other => Err(expected("a string or number map key", &other)),
    }
}

// ----------------------------------------------------------------------------------- read

/// Reads one SDK attribute value, taking it.
pub struct Deserializer(pub AttributeValue);

/// Calls `$m!` with serde's number methods: `deserialize_x => visit_x: x`.
macro_rules! with_numbers {
    ($m:ident) => {
        $m! {
            deserialize_i8 => visit_i8: i8,
            deserialize_i16 => visit_i16: i16,
            deserialize_i32 => visit_i32: i32,
            deserialize_i64 => visit_i64: i64,
            deserialize_i128 => visit_i128: i128,
            deserialize_u8 => visit_u8: u8,
            deserialize_u16 => visit_u16: u16,
            deserialize_u32 => visit_u32: u32,
            deserialize_u64 => visit_u64: u64,
            deserialize_u128 => visit_u128: u128,
            deserialize_f32 => visit_f32: f32,
            deserialize_f64 => visit_f64: f64,
        }
    };
}

macro_rules! number_from_n {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                AttributeValue::N(text) => {
                    let value = text
                        .parse::<$ty>()
                        .map_err(|e| Error(format!("number `{text}`: {e}")))?;
                    visitor.$visit(value)
                }
                other => Err(expected("N", &other)),
            }
        }
    )*};
}

/// What `deserialize_any` makes of a number: an `i64` if it is one, else a `u64`, else an
/// `f64` (as `serde_dynamo`).
fn any_number<'de, V: Visitor<'de>>(text: String, visitor: V) -> Result<V::Value, Error> {
    if let Ok(i) = text.parse::<i64>() {
        visitor.visit_i64(i)
    } else if let Ok(u) = text.parse::<u64>() {
        visitor.visit_u64(u)
    } else {
        match text.parse::<f64>() {
            Ok(f) => visitor.visit_f64(f),
            Err(e) => Err(Error(format!("number `{text}`: {e}"))),
        }
    }
}

impl<'de> de::Deserializer<'de> for Deserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            AttributeValue::N(text) => any_number(text, visitor),
            AttributeValue::S(s) => visitor.visit_string(s),
            AttributeValue::Bool(b) => visitor.visit_bool(b),
            AttributeValue::B(b) => visitor.visit_byte_buf(b.into_inner()),
            AttributeValue::Null(_) => visitor.visit_unit(),
            AttributeValue::M(map) => visitor.visit_map(MapReader::new(map)),
            list @ (AttributeValue::L(_)
            | AttributeValue::Ss(_)
            | AttributeValue::Ns(_)
            | AttributeValue::Bs(_)) => Deserializer(list).deserialize_seq(visitor),
            other => Err(expected("a known attribute type", &other)),
        }
    }

    with_numbers!(number_from_n);

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            AttributeValue::Bool(b) => visitor.visit_bool(b),
            other => Err(expected("BOOL", &other)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            AttributeValue::S(s) => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => visitor.visit_char(c),
                    _ => Err(Error(format!("expected one character, found `{s}`"))),
                }
            }
            other => Err(expected("S", &other)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            AttributeValue::S(s) => visitor.visit_string(s),
            other => Err(expected("S", &other)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            AttributeValue::B(b) => visitor.visit_byte_buf(b.into_inner()),
            other => Err(expected("B", &other)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            AttributeValue::Null(true) => visitor.visit_none(),
            other => visitor.visit_some(Deserializer(other)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            AttributeValue::Null(true) => visitor.visit_unit(),
            other => Err(expected("NULL", &other)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let values: Vec<AttributeValue> = match self.0 {
            AttributeValue::L(list) => list,
            AttributeValue::Ss(set) => set.into_iter().map(AttributeValue::S).collect(),
            AttributeValue::Ns(set) => set.into_iter().map(AttributeValue::N).collect(),
            AttributeValue::Bs(set) => set.into_iter().map(AttributeValue::B).collect(),
            other => return Err(expected("L", &other)),
        };
        let mut access = de::value::SeqDeserializer::new(values.into_iter().map(Deserializer));
        let value = visitor.visit_seq(&mut access)?;
        access.end()?;
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            AttributeValue::M(map) => visitor.visit_map(MapReader::new(map)),
            other => Err(expected("M", &other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            list @ AttributeValue::L(_) => Deserializer(list).deserialize_seq(visitor),
            other => Deserializer(other).deserialize_map(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            AttributeValue::S(s) => visitor.visit_enum(s.into_deserializer()),
            AttributeValue::M(map) if map.len() == 1 => {
                let Some((variant, value)) = map.into_iter().next() else {
                    unreachable!("a map of one entry")
                };
                visitor.visit_enum(Variant { variant, value })
            }
            other => Err(expected("S or an M of one entry", &other)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

impl<'de> IntoDeserializer<'de, Error> for Deserializer {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// A map's entries, taken one by one.
struct MapReader {
    entries: std::collections::hash_map::IntoIter<String, AttributeValue>,
    value: Option<AttributeValue>,
}

impl MapReader {
    fn new(map: Map) -> Self {
        MapReader {
            entries: map.into_iter(),
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapReader {
    type Error = Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(MapKey(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| Error("a map value asked for before its key".into()))?;
        seed.deserialize(Deserializer(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A map key: text, or a number or bool written as text.
struct MapKey(String);

macro_rules! number_from_key {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let value = self
                .0
                .parse::<$ty>()
                .map_err(|e| Error(format!("map key `{}`: {e}", self.0)))?;
            visitor.$visit(value)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for MapKey {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.0)
    }

    with_numbers!(number_from_key);

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.as_str() {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => Err(Error(format!("map key `{other}` is not a bool"))),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf option unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// An enum written as a map of one entry: the variant's name and its content.
struct Variant {
    variant: String,
    value: AttributeValue,
}

impl<'de> de::EnumAccess<'de> for Variant {
    type Error = Error;
    type Variant = Deserializer;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Deserializer), Error> {
        let variant = seed.deserialize(MapKey(self.variant))?;
        Ok((variant, Deserializer(self.value)))
    }
}

impl<'de> de::VariantAccess<'de> for Deserializer {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.0 {
            AttributeValue::Null(_) => Ok(()),
            other => Err(expected("NULL for a unit variant", &other)),
        }
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        Newtype(i64),
        Tuple(u8, String),
        Struct { a: bool, b: Option<f64> },
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        small: i8,
        big: u64,
        negative: i64,
        float: f64,
        fraction: f32,
        text: String,
        empty: String,
        letter: char,
        flag: bool,
        none: Option<String>,
        some: Option<u32>,
        unit: (),
        list: Vec<String>,
        empty_list: Vec<u16>,
        tuple: (i32, String),
        map: BTreeMap<String, i64>,
        numbered: BTreeMap<u32, String>,
        shapes: Vec<Shape>,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        nested: Option<Box<Everything>>,
        #[serde(default)]
        defaulted: Vec<String>,
    }

    fn sample(nested: bool) -> Everything {
        Everything {
            small: -8,
            big: u64::MAX,
            negative: i64::MIN,
            float: 0.1,
            fraction: 2.5,
            text: "tëxt \"quoted\" #1".into(),
            empty: String::new(),
            letter: 'ß',
            flag: true,
            none: None,
            some: Some(7),
            unit: (),
            list: vec!["a".into(), "b".into()],
            empty_list: vec![],
            tuple: (-1, "one".into()),
            map: BTreeMap::from([("x".into(), 1), ("y".into(), -2)]),
            numbered: BTreeMap::from([(3, "three".into())]),
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(-3),
                Shape::Tuple(1, "t".into()),
                Shape::Struct { a: false, b: None },
                Shape::Struct {
                    a: true,
                    b: Some(1e300),
                },
            ],
            bytes: vec![0, 1, 255],
            nested: nested.then(|| Box::new(sample(false))),
            defaulted: vec!["d".into()],
        }
    }

    #[test]
    fn writes_what_serde_dynamo_writes() {
        let value = sample(true);
        let ours = to_map(&value).unwrap();
        let theirs: Map = serde_dynamo::to_item(&value).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn reads_back_what_it_writes_and_what_serde_dynamo_writes() {
        let value = sample(true);
        assert_eq!(
            from_map::<Everything>(to_map(&value).unwrap()).unwrap(),
            value
        );
        let theirs: Map = serde_dynamo::to_item(&value).unwrap();
        assert_eq!(from_map::<Everything>(theirs).unwrap(), value);
        // A missing field with a default, extra attributes ignored.
        let mut map = to_map(&value).unwrap();
        map.remove("defaulted");
        map.insert("unknown".into(), AttributeValue::Bool(false));
        let read: Everything = from_map(map).unwrap();
        assert_eq!(read.defaulted, Vec::<String>::new());
    }

    #[test]
    fn self_describing_reads_take_numbers_as_serde_dynamo_does() {
        let read: serde_json::Value = from_attribute_value(AttributeValue::M(HashMap::from([
            ("i".to_string(), AttributeValue::N("-5".into())),
            (
                "u".to_string(),
                AttributeValue::N("18446744073709551615".into()),
            ),
            ("f".to_string(), AttributeValue::N("1.5".into())),
            (
                "set".to_string(),
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
            ),
            ("null".to_string(), AttributeValue::Null(true)),
        ])))
        .unwrap();
        assert_eq!(
            read,
            serde_json::json!({"i": -5, "u": 18446744073709551615u64, "f": 1.5, "set": ["a", "b"], "null": null})
        );
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Wants {
            n: i64,
            s: String,
        }
        let bad = |n: AttributeValue, s: AttributeValue| {
            from_map::<Wants>(HashMap::from([("n".to_string(), n), ("s".to_string(), s)]))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(AttributeValue::S("1".into()), AttributeValue::S("x".into())),
            "expected N, found S"
        );
        assert!(bad(
            AttributeValue::N("1.5".into()),
            AttributeValue::S("x".into())
        )
        .starts_with("number `1.5`"));
        assert_eq!(
            bad(AttributeValue::N("1".into()), AttributeValue::Null(true)),
            "expected S, found NULL"
        );
        let missing = from_map::<Wants>(HashMap::new()).unwrap_err().to_string();
        assert_eq!(missing, "missing field `n`");
        assert!(to_map(&5_i64).is_err());
    }
}
