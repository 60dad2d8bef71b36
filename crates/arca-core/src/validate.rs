//! Checks of request fields against botocore's model (lengths, patterns, ranges), with
//! the InvalidParameterException messages clients see.

use arca_types::wire::Tag;
use arca_types::ApiError;

pub(crate) fn required<'a, T>(v: &'a Option<T>, name: &str) -> Result<&'a T, ApiError> {
    v.as_ref().ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "Invalid parameter: {name} is a required parameter."
        ))
    })
}

pub(crate) fn length(name: &str, v: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid parameter: {name} must have length between {min} and {max}."
        )));
    }
    Ok(())
}

pub(crate) fn secret_id(v: &Option<String>) -> Result<&str, ApiError> {
    let id = required(v, "SecretId")?;
    length("SecretId", id, 1, 2048)?;
    Ok(id)
}

/// Secret names: 1–512 ASCII letters, digits and `/_+=.@-` (AWS's documented charset).
pub(crate) fn secret_name(name: &str) -> Result<(), ApiError> {
    length("Name", name, 1, 512)?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
    {
        return Err(ApiError::invalid_parameter(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        ));
    }
    Ok(())
}

pub(crate) fn token(v: &Option<String>) -> Result<Option<&str>, ApiError> {
    match v {
        None => Ok(None),
        Some(t) => {
            length("ClientRequestToken", t, 32, 64)?;
            Ok(Some(t))
        }
    }
}

pub(crate) fn version_id(name: &str, v: &Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        None => Ok(None),
        Some(t) => {
            length(name, t, 32, 64)?;
            Ok(Some(t.clone()))
        }
    }
}

pub(crate) fn stage(name: &str, s: &str) -> Result<(), ApiError> {
    length(name, s, 1, 256)
}

pub(crate) fn description(v: &Option<String>) -> Result<(), ApiError> {
    if let Some(d) = v {
        length("Description", d, 0, 2048)?;
    }
    Ok(())
}

pub(crate) fn secret_type(v: &Option<String>) -> Result<(), ApiError> {
    if let Some(d) = v {
        length("Type", d, 0, 256)?;
    }
    Ok(())
}

pub(crate) const MAX_TAGS: usize = 50;

/// Tag keys 1–128 and values 0–256 characters, from the model; the `aws:` prefix is
/// reserved for AWS, as the tagging documentation says.
pub(crate) fn tags(tags: &[Tag]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(tags.len());
    for t in tags {
        let key = t.key.clone().ok_or_else(|| {
            ApiError::invalid_parameter("Invalid parameter: Tag Key is a required parameter.")
        })?;
        let value = t.value.clone().unwrap_or_default();
        length("Tag Key", &key, 1, 128)?;
        length("Tag Value", &value, 0, 256)?;
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::invalid_parameter(
                "Invalid parameter: Tag keys starting with 'aws:' are reserved for AWS use.",
            ));
        }
        // A repeated key in one request keeps its last value, as a map would.
        if let Some(existing) = out.iter_mut().find(|(k, _)| *k == key) {
            existing.1 = value;
        } else {
            out.push((key, value));
        }
    }
    if out.len() > MAX_TAGS {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid parameter: a secret can have at most {MAX_TAGS} tags."
        )));
    }
    Ok(out)
}

pub(crate) fn max_results(v: Option<i64>, max: i64) -> Result<Option<usize>, ApiError> {
    match v {
        None => Ok(None),
        Some(n) if (1..=max).contains(&n) => Ok(Some(n as usize)),
        Some(_) => Err(ApiError::invalid_parameter(format!(
            "Invalid parameter: MaxResults must be between 1 and {max}."
        ))),
    }
}

pub(crate) fn next_token(v: &Option<String>) -> Result<Option<&str>, ApiError> {
    match v {
        None => Ok(None),
        Some(t) => {
            length("NextToken", t, 1, 4096)?;
            Ok(Some(t))
        }
    }
}
