//! Where a key stands in the TOML text: line and column for errors.

use super::*;

/// Maps TOML paths and byte offsets to lines, for error messages.
pub(super) struct Locator<'a> {
    pub(super) text: &'a str,
    pub(super) origin: &'a str,
    /// Where relative paths start.
    pub(super) base: PathBuf,
    pub(super) doc: Option<toml_edit::ImDocument<&'a str>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

pub(super) fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

impl<'a> Locator<'a> {
    pub(super) fn new(text: &'a str, origin: &'a str, base: &Path) -> Self {
        Locator {
            text,
            origin,
            base: base.to_path_buf(),
            doc: toml_edit::ImDocument::parse(text).ok(),
        }
    }

    pub(super) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text.as_bytes()[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let col = offset
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        (line, col)
    }

    pub(super) fn error_at(&self, offset: usize, key: &str, message: &str) -> ConfigError {
        let (line, column) = self.line_col(offset);
        ConfigError::Invalid {
            file: self.origin.to_owned(),
            line,
            column,
            key: if key.is_empty() {
                "(top level)".to_owned()
            } else {
                key.to_owned()
            },
            message: message.to_owned(),
        }
    }

    /// Error at the TOML `path` (or its nearest existing parent).
    pub(super) fn error(&self, path: &[Seg], message: &str) -> ConfigError {
        let offset = self.offset_of(path).unwrap_or(0);
        self.error_at(offset, &path_string(path), message)
    }

    pub(super) fn offset_of(&self, path: &[Seg]) -> Option<usize> {
        enum Node<'n> {
            Item(&'n toml_edit::Item),
            Table(&'n toml_edit::Table),
        }
        let doc = self.doc.as_ref()?;
        let mut best = None;
        let mut node = Node::Table(doc.as_table());
        let start = |span: Option<std::ops::Range<usize>>| span.map(|s| s.start);
        for seg in path {
            let table_like: Option<&dyn toml_edit::TableLike> = match &node {
                Node::Table(t) => Some(*t),
                Node::Item(i) => i.as_table_like(),
            };
            let next = match (seg, &node) {
                (Seg::Key(k), _) => {
                    table_like
                        .and_then(|t| t.get_key_value(k))
                        .map(|(key, item)| {
                            best = start(key.span()).or(best);
                            Node::Item(item)
                        })
                }
                (Seg::Index(i), Node::Item(toml_edit::Item::ArrayOfTables(a))) => {
                    a.get(*i).map(|t| {
                        best = start(t.span()).or(best);
                        Node::Table(t)
                    })
                }
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        best
    }

    /// A parse error at `offset`. A table deserialized as a tagged enum
    /// (`[[sinks]]`) reports unknown and missing fields at the start of its
    /// array: the field is looked up in the array's tables, so the error
    /// names `sinks[1].retention_duraton` at its own line.
    pub(super) fn parse_error(&self, offset: usize, message: &str) -> ConfigError {
        let field = |prefix: &str| {
            message
                .strip_prefix(prefix)
                .and_then(|rest| rest.split('`').next())
                .filter(|f| !f.is_empty())
        };
        if let Some(doc) = self.doc.as_ref() {
            let mut tables = Vec::new();
            collect_tables(doc.as_table(), &mut Vec::new(), &mut tables);
            // The tables of the array (or the table) the error points at.
            let at: Vec<&(Vec<Seg>, &toml_edit::Table)> = tables
                .iter()
                .skip_while(|(_, t)| t.span().map(|s| s.start) != Some(offset))
                .collect();
            let parent = |p: &[Seg]| p.split_last().map(|(_, rest)| rest.to_vec());
            let first_parent = at.first().and_then(|(p, _)| parent(p));
            let same_array = |path: &[Seg]| first_parent.is_some() && parent(path) == first_parent;
            if let Some(name) = field("unknown field `") {
                for (path, t) in at.iter().filter(|(p, _)| same_array(p)) {
                    if let Some(k) = t.key(name) {
                        let mut path = path.clone();
                        path.push(key(name));
                        let start = k.span().map_or(offset, |s| s.start);
                        return self.error_at(start, &path_string(&path), message);
                    }
                }
            }
            if let Some(name) = field("missing field `") {
                for (path, t) in at.iter().filter(|(p, _)| same_array(p)) {
                    if !t.contains_key(name) {
                        let start = t.span().map_or(offset, |s| s.start);
                        let mut path = path.clone();
                        path.push(key(name));
                        return self.error_at(start, &path_string(&path), message);
                    }
                }
            }
            // A wrongly typed value loses its key the same way.
            let array: Vec<&(Vec<Seg>, &toml_edit::Table)> =
                at.iter().copied().filter(|(p, _)| same_array(p)).collect();
            if let Some((path, start)) = self.failing_key(&array, message) {
                return self.error_at(start.unwrap_or(offset), &path_string(&path), message);
            }
        }
        self.error_at(offset, &self.path_at(offset), message)
    }

    /// The key of an array's table that fails with `message`, found by
    /// parsing again: first the array cut down to one table, then that
    /// table cut down to its `type` and its first keys, in order, until the
    /// error comes back (serde stops at the first bad value of a table).
    /// Only runs for an error already found, so the re-parses cost nothing
    /// on a good config.
    pub(super) fn failing_key(
        &self,
        array: &[&(Vec<Seg>, &toml_edit::Table)],
        message: &str,
    ) -> Option<(Vec<Seg>, Option<usize>)> {
        let doc: toml_edit::DocumentMut = self.text.parse().ok()?;
        let fails_alike = |d: &toml_edit::DocumentMut| {
            toml::from_str::<RawConfig>(&d.to_string())
                .err()
                .is_some_and(|e| e.message().trim() == message)
        };
        for (path, table) in array {
            let Some((Seg::Index(i), parent)) = path.split_last() else {
                continue;
            };
            let mut single = doc.clone();
            {
                let tables = item_at_mut(&mut single, parent)?.as_array_of_tables_mut()?;
                let only = tables.get(*i)?.clone();
                tables.clear();
                tables.push(only);
            }
            if !fails_alike(&single) {
                continue;
            }
            let keys: Vec<&str> = table
                .iter()
                .map(|(k, _)| k)
                .filter(|k| *k != "type")
                .collect();
            for kept in 0..=keys.len() {
                let mut cut = single.clone();
                let only = item_at_mut(&mut cut, parent)?
                    .as_array_of_tables_mut()?
                    .get_mut(0)?;
                for k in &keys[kept..] {
                    only.remove(k);
                }
                if fails_alike(&cut) {
                    let name = match kept.checked_sub(1) {
                        Some(last) => keys[last],
                        None if table.contains_key("type") => "type",
                        None => return None,
                    };
                    let mut at = path.clone();
                    at.push(key(name));
                    return Some((at, table.key(name).and_then(|k| k.span()).map(|s| s.start)));
                }
            }
            return None;
        }
        None
    }

    /// The dotted path of the deepest key whose span holds `offset`.
    pub(super) fn path_at(&self, offset: usize) -> String {
        let Some(doc) = self.doc.as_ref() else {
            return String::new();
        };
        let mut path = Vec::new();
        walk_table(doc.as_table(), offset, &mut path);
        path_string(&path)
    }
}

/// Every table under `table` with its path, in document order of their
/// headers (implicit tables without a header are skipped).
pub(super) fn collect_tables<'t>(
    table: &'t toml_edit::Table,
    path: &mut Vec<Seg>,
    out: &mut Vec<(Vec<Seg>, &'t toml_edit::Table)>,
) {
    for (k, item) in table.iter() {
        match item {
            toml_edit::Item::Table(t) => {
                path.push(key(k));
                if t.span().is_some() {
                    out.push((path.clone(), t));
                }
                collect_tables(t, path, out);
                path.pop();
            }
            toml_edit::Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    path.push(key(k));
                    path.push(Seg::Index(i));
                    out.push((path.clone(), t));
                    collect_tables(t, path, out);
                    path.truncate(path.len() - 2);
                }
            }
            _ => {}
        }
    }
    if path.is_empty() {
        out.sort_by_key(|(_, t)| t.span().map_or(usize::MAX, |s| s.start));
    }
}

/// The item at `path` (which starts with a key) in `doc`.
pub(super) fn item_at_mut<'d>(
    doc: &'d mut toml_edit::DocumentMut,
    path: &[Seg],
) -> Option<&'d mut toml_edit::Item> {
    let (Seg::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let mut item = doc.as_table_mut().get_mut(first)?;
    for seg in rest {
        item = match seg {
            Seg::Key(k) => item.get_mut(k.as_str())?,
            Seg::Index(i) => item.get_mut(*i)?,
        };
    }
    Some(item)
}

pub(super) fn contains(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

pub(super) fn walk_table(table: &toml_edit::Table, offset: usize, path: &mut Vec<Seg>) -> bool {
    for (key, item) in table.iter() {
        let key_span = table.key(key).and_then(|k| k.span());
        let hit_key = contains(key_span, offset);
        match item {
            toml_edit::Item::Table(t) => {
                let mark = path.len();
                path.push(Seg::Key(key.to_owned()));
                if walk_table(t, offset, path) || hit_key {
                    return true;
                }
                path.truncate(mark);
            }
            toml_edit::Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let mark = path.len();
                    path.push(Seg::Key(key.to_owned()));
                    path.push(Seg::Index(i));
                    if walk_table(t, offset, path) {
                        return true;
                    }
                    path.truncate(mark);
                }
            }
            toml_edit::Item::Value(v) => {
                if hit_key || contains(v.span(), offset) {
                    path.push(Seg::Key(key.to_owned()));
                    if let toml_edit::Value::InlineTable(t) = v {
                        for (k, inner) in t.iter() {
                            let ks = t.key(k).and_then(|k| k.span());
                            if contains(ks, offset) || contains(inner.span(), offset) {
                                path.push(Seg::Key(k.to_owned()));
                                break;
                            }
                        }
                    }
                    return true;
                }
            }
            toml_edit::Item::None => {}
        }
    }
    false
}

// -------------------------------------------------------------- validation

pub(super) struct Validator<'a, 'b> {
    pub(super) locator: &'b Locator<'a>,
}

/// An empty secret (e.g. `"${ES_API_KEY:-}"` with the variable unset) is
/// no secret: the sink sends no credentials.
pub(super) fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

pub(super) fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

pub(super) fn at(base: &[Seg], k: &str) -> Vec<Seg> {
    let mut p = base.to_vec();
    p.push(key(k));
    p
}
