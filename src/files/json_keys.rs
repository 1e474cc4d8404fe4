//! A key written twice in one JSON object. Read through a `serde_json::Value` the last one
//! wins without a word, while another reader may keep the first: a checkpoint's `config.json`
//! with `"steps_done": 1500, "steps_done": 3` resumed at step 3. Files this tool reads are
//! checked whole, before they are used.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

/// Marks the error that carries the path of the repeated key.
const MARK: &str = "duplicate key at ";

/// The path (`training.steps_done`, `rules[2].id`) of the first key written twice in one
/// object of `text`, or None (also when `text` is not JSON: its parser says why elsewhere).
pub fn duplicate_key(text: &str) -> Option<String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let err = Walk(String::new()).deserialize(&mut de).err()?;
    let message = err.to_string();
    let rest = message.strip_prefix(MARK)?;
    Some(rest.split(" at line ").next().unwrap_or(rest).to_string())
}

/// [`duplicate_key`] as the refusal every reader gives (the message follows the file's path).
pub fn check_single_keys(text: &str) -> Result<(), String> {
    match duplicate_key(text) {
        Some(key) => Err(format!(
            "the key {key} is written twice (readers differ on which counts)"
        )),
        None => Ok(()),
    }
}

/// Visits a value at a path, refusing a repeated key in any object below it.
struct Walk(String);

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(Walk(format!("{}[{i}]", self.0)))?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = match self.0.as_str() {
                "" => key.clone(),
                at => format!("{at}.{key}"),
            };
            if !seen.insert(key) {
                return Err(A::Error::custom(format!("{MARK}{path}")));
            }
            map.next_value_seed(Walk(path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::duplicate_key;

    #[test]
    fn a_key_written_twice_is_found_at_any_depth() {
        let resumed = r#"{"training": {"steps_done": 1500, "steps_done": 3}}"#;
        assert_eq!(
            duplicate_key(resumed).as_deref(),
            Some("training.steps_done")
        );
        let listed = r#"{"a": [1, {"b": 2}, {"c": 1, "c": 2}]}"#;
        assert_eq!(duplicate_key(listed).as_deref(), Some("a[2].c"));
        assert_eq!(duplicate_key(r#"{"a": {"x": 1}, "b": {"x": 2}}"#), None);
        assert_eq!(duplicate_key("not json"), None);
        assert_eq!(duplicate_key(r#"{"k": "duplicate key at x"}"#), None);
    }
}
