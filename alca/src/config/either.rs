//! Values written either in a short form (string or array) or as a table.
//!
//! Hand-written `Deserialize` (instead of `#[serde(untagged)]`) keeps field paths and unknown-key
//! tracking working inside the table form and gives a precise "expected …" message.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Describes, for error messages, what a table-or-short value looks like.
pub trait Expecting {
    /// Completes "expected …".
    const EXPECTING: &'static str;
}

/// A string (short form) or a table `T`.
#[derive(Debug, Clone, PartialEq)]
pub enum StrOrTable<T> {
    Str(String),
    Table(T),
}

/// An array of strings (short form) or a table `T`.
#[derive(Debug, Clone, PartialEq)]
pub enum ListOrTable<T> {
    List(Vec<String>),
    Table(T),
}

struct StrOrTableVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Expecting> Visitor<'de> for StrOrTableVisitor<T> {
    type Value = StrOrTable<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(StrOrTable::Str(v.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(StrOrTable::Table)
    }
}

impl<'de, T: Deserialize<'de> + Expecting> Deserialize<'de> for StrOrTable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrOrTableVisitor(PhantomData))
    }
}

struct ListOrTableVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Expecting> Visitor<'de> for ListOrTableVisitor<T> {
    type Value = ListOrTable<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            items.push(item);
        }
        Ok(ListOrTable::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(ListOrTable::Table)
    }
}

impl<'de, T: Deserialize<'de> + Expecting> Deserialize<'de> for ListOrTable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListOrTableVisitor(PhantomData))
    }
}

impl<T: JsonSchema + Expecting> JsonSchema for StrOrTable<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("StringOr{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let table = generator.subschema_for::<T>();
        json_schema!({
            "description": format!("Expected {}", T::EXPECTING),
            "anyOf": [{ "type": "string" }, table]
        })
    }
}

impl<T: JsonSchema + Expecting> JsonSchema for ListOrTable<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("ListOr{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let table = generator.subschema_for::<T>();
        json_schema!({
            "description": format!("Expected {}", T::EXPECTING),
            "anyOf": [{ "type": "array", "items": { "type": "string" } }, table]
        })
    }
}
