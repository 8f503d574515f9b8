//! Stripe-style query strings: `a=1&expand[]=x&expand[]=y`, and the list
//! parameters every list endpoint shares.

use super::error::ApiError;

/// Decoded query pairs in their original order.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(query: Option<&str>) -> Params {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Params(pairs)
    }

    /// First value of a plain parameter; an empty value counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Values of an array parameter sent as `name[]=…` or `name[0]=…`.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter_map(move |(k, v)| {
            let index = k.strip_prefix(name)?.strip_prefix('[')?.strip_suffix(']')?;
            index
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then_some(v.as_str())
        })
    }
}

/// Percent-decoding with `+` as space (form encoding).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `limit` plus at most one cursor.
#[derive(Debug)]
pub(crate) struct ListParams {
    pub limit: usize,
    pub starting_after: Option<String>,
    pub ending_before: Option<String>,
}

impl ListParams {
    pub(crate) fn parse(params: &Params) -> Result<ListParams, ApiError> {
        let limit = match params.get("limit") {
            None => 10,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=100).contains(&n) => n as usize,
                Ok(_) => {
                    return Err(ApiError::invalid(
                        "Invalid limit: must be between 1 and 100",
                        "limit",
                    ));
                }
                Err(_) => {
                    return Err(ApiError::invalid(
                        format!("Invalid integer: {text}"),
                        "limit",
                    ));
                }
            },
        };
        let starting_after = params.get("starting_after").map(str::to_owned);
        let ending_before = params.get("ending_before").map(str::to_owned);
        if starting_after.is_some() && ending_before.is_some() {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                "ending_before",
            ));
        }
        Ok(ListParams {
            limit,
            starting_after,
            ending_before,
        })
    }

    /// The cursor id and its parameter name, if any.
    pub(crate) fn cursor_id(&self) -> Option<(&str, &'static str)> {
        match (&self.starting_after, &self.ending_before) {
            (Some(id), _) => Some((id, "starting_after")),
            (None, Some(id)) => Some((id, "ending_before")),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arrays_and_encoding() {
        let p = Params::parse(Some(
            "customer=cus_1&expand%5B%5D=data.items.data.price.product&expand[]=x&types[0]=a+b&empty=",
        ));
        assert_eq!(p.get("customer"), Some("cus_1"));
        assert_eq!(
            p.all("expand").collect::<Vec<_>>(),
            ["data.items.data.price.product", "x"]
        );
        assert_eq!(p.all("types").collect::<Vec<_>>(), ["a b"]);
        assert_eq!(p.get("empty"), None);
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }

    #[test]
    fn validates_limit() {
        for bad in ["0", "101", "abc", "-1"] {
            let p = Params::parse(Some(&format!("limit={bad}")));
            assert!(ListParams::parse(&p).is_err(), "{bad}");
        }
        let p = Params::parse(Some("limit=100"));
        assert_eq!(ListParams::parse(&p).unwrap().limit, 100);
    }
}
