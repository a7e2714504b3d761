//! The bot's texts, from `locales/{en,ru}.txt` (`key = text`, `\n` for a line break, `{name}` placeholders). A user
//! whose Telegram language is Russian gets Russian, everyone else English; `/lang` switches.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A language the bot speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    /// From a stored code (`"ru"`, `"en"`) or Telegram's `language_code` (`"ru"`, `"ru-RU"`, `"en-US"`, ...).
    pub fn from_code(code: Option<&str>) -> Lang {
        match code {
            Some(c) if c.to_ascii_lowercase().starts_with("ru") => Lang::Ru,
            _ => Lang::En,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Ru,
            Lang::Ru => Lang::En,
        }
    }
}

type Table = HashMap<&'static str, String>;

/// Parses a locale file. Panics on a malformed line: the files are part of the binary and tested.
fn parse(src: &'static str) -> Table {
    let mut t = Table::new();
    for (n, line) in src.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once(" = ")
            .unwrap_or_else(|| panic!("locale line {} has no ` = `: {line}", n + 1));
        t.insert(k.trim(), v.replace("\\n", "\n"));
    }
    t
}

fn table(lang: Lang) -> &'static Table {
    static EN: OnceLock<Table> = OnceLock::new();
    static RU: OnceLock<Table> = OnceLock::new();
    match lang {
        Lang::En => EN.get_or_init(|| parse(include_str!("../locales/en.txt"))),
        Lang::Ru => RU.get_or_init(|| parse(include_str!("../locales/ru.txt"))),
    }
}

/// The text `key` in `lang` with `{name}`s filled from `args`. An unknown key gives the key itself (and is caught
/// by the tests, which check every key the code uses).
pub fn t(lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let Some(text) = table(lang).get(key).or_else(|| table(Lang::En).get(key)) else {
        return key.to_owned();
    };
    let mut out = text.clone();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(s: &str) -> Vec<String> {
        let mut v: Vec<String> = s
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_owned()))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn both_languages_have_the_same_keys_and_placeholders() {
        let en = table(Lang::En);
        let ru = table(Lang::Ru);
        let mut keys: Vec<_> = en.keys().collect();
        keys.sort();
        let mut rkeys: Vec<_> = ru.keys().collect();
        rkeys.sort();
        assert_eq!(keys, rkeys);
        for k in keys {
            assert_eq!(placeholders(&en[k]), placeholders(&ru[k]), "key {k}");
        }
    }

    #[test]
    fn every_key_the_code_uses_exists() {
        let src = [
            include_str!("handle.rs"),
            include_str!("notify.rs"),
            include_str!("admin.rs"),
            include_str!("intake.rs"),
            include_str!("options.rs"),
            include_str!("lib.rs"),
        ]
        .concat();
        let en = table(Lang::En);
        let mut missing = vec![];
        for part in src
            .split("t(lang, \"")
            .skip(1)
            .chain(src.split("tr(\"").skip(1))
        {
            let key = part.split('"').next().unwrap_or_default();
            if !en.contains_key(key) {
                missing.push(key.to_owned());
            }
        }
        assert!(missing.is_empty(), "keys missing from en.txt: {missing:?}");
    }

    #[test]
    fn language_from_telegram_code() {
        assert_eq!(Lang::from_code(Some("ru")), Lang::Ru);
        assert_eq!(Lang::from_code(Some("ru-RU")), Lang::Ru);
        assert_eq!(Lang::from_code(Some("en-US")), Lang::En);
        assert_eq!(Lang::from_code(Some("de")), Lang::En);
        assert_eq!(Lang::from_code(None), Lang::En);
        assert_eq!(
            t(Lang::Ru, "cancel_done", &[("id", "7")]),
            "Задача №7 отменена."
        );
    }
}
