//! The `generic` rotator's createSecret value: a new random password in the JSON's
//! `password` field, or as the whole SecretString when the value is not a JSON object.
//! It has no system to update, so setSecret and testSecret do nothing.

use super::shared::SecretDoc;
use arca_types::secret::SecretString;

pub(crate) fn new_value(current: &SecretString, password: &SecretString) -> SecretString {
    match SecretDoc::parse(current) {
        Some(mut doc) => {
            doc.set_str("password", password.expose());
            doc.to_secret()
        }
        None => password.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_password_field_or_the_whole_value() {
        let pw = SecretString::new("NEW".into());
        let v = new_value(
            &SecretString::new(r#"{"user":"a","password":"old"}"#.into()),
            &pw,
        );
        let j: serde_json::Value = serde_json::from_str(v.expose()).unwrap();
        assert_eq!(j, serde_json::json!({"user": "a", "password": "NEW"}));
        assert_eq!(
            new_value(&SecretString::new("plain".into()), &pw).expose(),
            "NEW"
        );
        assert_eq!(
            new_value(&SecretString::new("[1]".into()), &pw).expose(),
            "NEW"
        );
    }
}
