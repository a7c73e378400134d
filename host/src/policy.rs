//! Cache policy expressions: `"INPUTS - 'debug' + TASK_SOURCE"` (DESIGN §3).
//!
//! A policy says which parts make up a task's cache key. It is written as an expression
//! wherever it is configured and parsed here into a [`Policy`], a set of [`Part`]s. The
//! algebra is Prefect's (reference §4): `NONE` is the identity of `+`, compounds flatten,
//! every `INPUTS` merges into one whose exclusions are the union, and `-` on a policy
//! without `INPUTS` does nothing. Because cachehost hashes the *sorted* part keys, part
//! order carries no meaning, so a policy keeps its parts in one canonical order.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The names an expression may use, as listed in error messages.
const NAMES: &[&str] =
    &["DEFAULT", "INPUTS", "TASK_SOURCE", "FLOW_PARAMETERS", "RUN_ID", "NONE", "NO_CACHE", "KEY_FN", "READS"];

/// What an error says was expected where a policy name belongs.
const EXPECTED_NAME: &str =
    "a policy name (DEFAULT, INPUTS, TASK_SOURCE, FLOW_PARAMETERS, RUN_ID, NONE, KEY_FN, READS)";

/// A cache policy: the parts whose keys make up a task's cache key. No parts is `NONE`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    /// The parts, sorted in [`Part`]'s order, without duplicates, with at most one `Inputs`.
    pub parts: Vec<Part>,
}

/// One component of a cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The task's arguments, except the named ones (`INPUTS`, `INPUTS - 'name'`).
    Inputs {
        /// Parameter names left out of the key.
        exclude: BTreeSet<String>,
    },
    /// The providing component's bytes and the task's name (`TASK_SOURCE`).
    TaskSource,
    /// The enclosing flow run's parameters (`FLOW_PARAMETERS`).
    FlowParameters,
    /// The flow run id, or the task run id of a standalone task run (`RUN_ID`).
    RunId,
    /// The string returned by the component's exported key function (`KEY_FN`).
    KeyFn,
    /// What the run read through WASI (`READS`): the files, listings and environment in the
    /// record's read set must be as they were, or the record is a miss (`run::reads`).
    Reads,
}

impl Part {
    /// The policy name this part is written as.
    pub fn name(&self) -> &'static str {
        match self {
            Part::Inputs { .. } => "INPUTS",
            Part::TaskSource => "TASK_SOURCE",
            Part::FlowParameters => "FLOW_PARAMETERS",
            Part::RunId => "RUN_ID",
            Part::KeyFn => "KEY_FN",
            Part::Reads => "READS",
        }
    }
}

impl Policy {
    /// `NONE`: no key, so no lookup, no lock and no write.
    pub fn none() -> Policy {
        Policy { parts: Vec::new() }
    }

    /// `DEFAULT` = `INPUTS + TASK_SOURCE + RUN_ID`.
    pub fn default_policy() -> Policy {
        Policy::from_parts(vec![Part::Inputs { exclude: BTreeSet::new() }, Part::TaskSource, Part::RunId])
    }

    /// A policy of the given parts, normalised as `+` would combine them.
    pub fn from_parts(parts: Vec<Part>) -> Policy {
        let mut exclude: Option<BTreeSet<String>> = None;
        let mut others = Vec::new();
        for part in parts {
            match part {
                Part::Inputs { exclude: names } => exclude.get_or_insert_with(BTreeSet::new).extend(names),
                other => others.push(other),
            }
        }
        if let Some(exclude) = exclude {
            others.push(Part::Inputs { exclude });
        }
        others.sort();
        others.dedup();
        Policy { parts: others }
    }

    /// Parses a policy expression such as `"INPUTS - 'debug' + TASK_SOURCE"`.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse_reporting(text).map(|parsed| parsed.policy)
    }

    /// Parses a policy expression and also reports the `- 'name'` operations that had no effect.
    pub fn parse_reporting(text: &str) -> Result<Parsed, PolicyError> {
        let mut parser = Parser { lexer: Lexer::new(text), noop_exclusions: Vec::new(), depth: 0 };
        let first = parser.lexer.peek()?;
        if first.token == Token::End {
            return Err(PolicyError::new(first.column, format!("empty policy expression; expected {EXPECTED_NAME}")));
        }
        let policy = parser.expression()?;
        let next = parser.lexer.next()?;
        match next.token {
            Token::End => Ok(Parsed { policy, noop_exclusions: parser.noop_exclusions }),
            Token::RParen => Err(PolicyError::new(next.column, "unmatched ')'".to_string())),
            other => Err(PolicyError::new(
                next.column,
                format!("expected '+', '-' or the end of the expression, found {}", other.describe()),
            )),
        }
    }

    /// `self + other`: the parts of both; `NONE` on either side leaves the other unchanged.
    pub fn plus(self, other: Policy) -> Policy {
        let mut parts = self.parts;
        parts.extend(other.parts);
        Policy::from_parts(parts)
    }

    /// `self - 'name'`: excludes the parameter from `INPUTS`.
    ///
    /// As in Prefect, this is a no-op on a policy without `INPUTS`; the returned flag says
    /// whether the exclusion took effect, so the caller can warn about it.
    pub fn minus(mut self, name: &str) -> (Policy, bool) {
        for part in &mut self.parts {
            if let Part::Inputs { exclude } = part {
                exclude.insert(name.to_string());
                return (self, true);
            }
        }
        (self, false)
    }

    /// Whether this is `NONE`, the policy that never gives a key.
    pub fn is_none(&self) -> bool {
        self.parts.is_empty()
    }

    /// Whether the key needs the component's key function.
    pub fn uses_key_fn(&self) -> bool {
        self.parts.contains(&Part::KeyFn)
    }

    /// The parameters excluded from `INPUTS`, or None when the policy has no `INPUTS`.
    pub fn inputs_exclusions(&self) -> Option<&BTreeSet<String>> {
        self.parts.iter().find_map(|part| match part {
            Part::Inputs { exclude } => Some(exclude),
            _ => None,
        })
    }
}

impl FromStr for Policy {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text)
    }
}

/// Renders the canonical expression: `NONE`, `DEFAULT - 'debug'`, `INPUTS + TASK_SOURCE`.
impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.is_empty() {
            return f.write_str("NONE");
        }
        let exclude = self.inputs_exclusions();
        let is_default =
            exclude.is_some() && self.parts.contains(&Part::TaskSource) && self.parts.contains(&Part::RunId);
        let mut terms: Vec<String> = Vec::new();
        let with_exclusions = |head: &str| {
            let mut term = head.to_string();
            for name in exclude.into_iter().flatten() {
                term.push_str(" - ");
                term.push_str(&quote(name));
            }
            term
        };
        if is_default {
            terms.push(with_exclusions("DEFAULT"));
        }
        for part in &self.parts {
            match part {
                Part::Inputs { .. } if !is_default => terms.push(with_exclusions("INPUTS")),
                Part::Inputs { .. } | Part::TaskSource | Part::RunId if is_default => {}
                other => terms.push(other.name().to_string()),
            }
        }
        f.write_str(&terms.join(" + "))
    }
}

/// Quotes a parameter name with single quotes, or double quotes when it holds a single one.
fn quote(name: &str) -> String {
    if name.contains('\'') && !name.contains('"') {
        format!("\"{name}\"")
    } else {
        format!("'{name}'")
    }
}

/// A parsed expression together with what the host should warn about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The policy the expression denotes.
    pub policy: Policy,
    /// Exclusions applied to a policy without `INPUTS`, which Prefect silently ignores.
    pub noop_exclusions: Vec<NoopExclusion>,
}

/// A `- 'name'` that had no effect because the policy to its left had no `INPUTS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoopExclusion {
    /// The excluded parameter name.
    pub name: String,
    /// 1-based column of the `-`.
    pub column: usize,
}

impl fmt::Display for NoopExclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column {}: `- {}` has no effect because the policy to its left has no INPUTS",
            self.column,
            quote(&self.name)
        )
    }
}

/// A policy expression that cannot be parsed, with the column where it goes wrong.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("column {column}: {message}")]
pub struct PolicyError {
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

impl PolicyError {
    fn new(column: usize, message: String) -> PolicyError {
        PolicyError { column, message }
    }

    /// The expression on one line and a caret under the column on the next.
    pub fn caret(&self, text: &str) -> String {
        let pad: String =
            text.chars().take(self.column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        format!("{text}\n{pad}^")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Name(String),
    Quoted(String),
    Plus,
    Minus,
    LParen,
    RParen,
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Name(name) => format!("'{name}'"),
            Token::Quoted(name) => format!("the quoted name {}", quote(name)),
            Token::Plus => "'+'".to_string(),
            Token::Minus => "'-'".to_string(),
            Token::LParen => "'('".to_string(),
            Token::RParen => "')'".to_string(),
            Token::End => "the end of the expression".to_string(),
        }
    }
}

#[derive(Clone, Debug)]
struct Spanned {
    token: Token,
    column: usize,
}

/// Produces tokens on demand, so a lexical error after a grammar error is never the one reported.
struct Lexer {
    chars: Vec<char>,
    pos: usize,
    peeked: Option<Spanned>,
}

impl Lexer {
    fn new(text: &str) -> Lexer {
        Lexer { chars: text.chars().collect(), pos: 0, peeked: None }
    }

    fn peek(&mut self) -> Result<Spanned, PolicyError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.scan()?);
        }
        Ok(self.peeked.clone().expect("just filled"))
    }

    fn next(&mut self) -> Result<Spanned, PolicyError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.scan(),
        }
    }

    fn scan(&mut self) -> Result<Spanned, PolicyError> {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
        let column = self.pos + 1;
        let Some(&c) = self.chars.get(self.pos) else {
            return Ok(Spanned { token: Token::End, column });
        };
        self.pos += 1;
        let token = match c {
            '+' => Token::Plus,
            '-' => Token::Minus,
            '(' => Token::LParen,
            ')' => Token::RParen,
            '\'' | '"' => {
                let start = self.pos;
                while self.chars.get(self.pos).is_some_and(|&d| d != c) {
                    self.pos += 1;
                }
                if self.pos == self.chars.len() {
                    return Err(PolicyError::new(column, format!("unterminated quote: no closing {c} after this one")));
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                self.pos += 1;
                if name.is_empty() {
                    return Err(PolicyError::new(
                        column,
                        "expected a parameter name between the quotes, found nothing".to_string(),
                    ));
                }
                Token::Quoted(name)
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = self.pos - 1;
                while self.chars.get(self.pos).is_some_and(|&d| d.is_alphanumeric() || d == '_') {
                    self.pos += 1;
                }
                Token::Name(self.chars[start..self.pos].iter().collect())
            }
            other => {
                return Err(PolicyError::new(column, format!("unexpected character '{other}'")));
            }
        };
        Ok(Spanned { token, column })
    }
}

/// `expression := term (('+' term) | ('-' QUOTED))*`, `term := NAME | '(' expression ')'`.
struct Parser {
    lexer: Lexer,
    noop_exclusions: Vec<NoopExclusion>,
    /// How many parentheses are open: parsing recurses once per level.
    depth: usize,
}

/// How deep parentheses may nest. A policy may come from an untrusted component's options
/// export, and each level is a recursion of the parser.
const MAX_PAREN_DEPTH: usize = 32;

impl Parser {
    fn expression(&mut self) -> Result<Policy, PolicyError> {
        let mut policy = self.term(None)?;
        loop {
            let op = self.lexer.peek()?;
            match op.token {
                Token::Plus => {
                    self.lexer.next()?;
                    let rhs = self.term(Some("'+'"))?;
                    policy = policy.plus(rhs);
                }
                Token::Minus => {
                    self.lexer.next()?;
                    let operand = self.lexer.next()?;
                    let Token::Quoted(name) = operand.token else {
                        return Err(PolicyError::new(
                            operand.column,
                            format!(
                                "'-' takes a quoted parameter name like 'debug', found {}",
                                operand.token.describe()
                            ),
                        ));
                    };
                    let (next, applied) = policy.minus(&name);
                    if !applied {
                        self.noop_exclusions.push(NoopExclusion { name, column: op.column });
                    }
                    policy = next;
                }
                _ => return Ok(policy),
            }
        }
    }

    /// A name or a parenthesised expression; `after` names the operator before it, if any.
    fn term(&mut self, after: Option<&str>) -> Result<Policy, PolicyError> {
        let next = self.lexer.next()?;
        match next.token {
            Token::Name(name) => named(&name).ok_or_else(|| unknown_name(&name, next.column)),
            Token::LParen => {
                if self.depth >= MAX_PAREN_DEPTH {
                    return Err(PolicyError::new(
                        next.column,
                        format!("parentheses are nested deeper than {MAX_PAREN_DEPTH} levels"),
                    ));
                }
                self.depth += 1;
                let inner = self.expression();
                self.depth -= 1;
                let inner = inner?;
                let close = self.lexer.next()?;
                match close.token {
                    Token::RParen => Ok(inner),
                    Token::End => Err(PolicyError::new(
                        next.column,
                        "unbalanced parentheses: this '(' is never closed".to_string(),
                    )),
                    other => Err(PolicyError::new(
                        close.column,
                        format!("expected '+', '-' or ')', found {}", other.describe()),
                    )),
                }
            }
            other => {
                let after = after.map(|op| format!(" after {op}")).unwrap_or_default();
                Err(PolicyError::new(
                    next.column,
                    format!("expected {EXPECTED_NAME}{after}, found {}", other.describe()),
                ))
            }
        }
    }
}

/// The policy a name stands for.
fn named(name: &str) -> Option<Policy> {
    let part = match name {
        "DEFAULT" => return Some(Policy::default_policy()),
        "NONE" | "NO_CACHE" => return Some(Policy::none()),
        "INPUTS" => Part::Inputs { exclude: BTreeSet::new() },
        "TASK_SOURCE" => Part::TaskSource,
        "FLOW_PARAMETERS" => Part::FlowParameters,
        "RUN_ID" => Part::RunId,
        "KEY_FN" => Part::KeyFn,
        "READS" => Part::Reads,
        _ => return None,
    };
    Some(Policy { parts: vec![part] })
}

fn unknown_name(name: &str, column: usize) -> PolicyError {
    let upper = name.to_uppercase();
    let closest = NAMES
        .iter()
        .map(|candidate| (edit_distance(&upper, candidate), *candidate))
        .min()
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(2));
    let hint = match closest {
        Some((_, candidate)) => format!("; did you mean {candidate}?"),
        None => format!("; expected {EXPECTED_NAME}"),
    };
    PolicyError::new(column, format!("unknown policy name '{name}'{hint}"))
}

/// Levenshtein distance, for suggesting the name the user probably meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(exclude: &[&str]) -> Part {
        Part::Inputs { exclude: exclude.iter().map(|s| s.to_string()).collect() }
    }

    fn parts(text: &str) -> Vec<Part> {
        Policy::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).parts
    }

    fn error(text: &str) -> String {
        Policy::parse(text).expect_err(text).to_string()
    }

    #[test]
    fn names_denote_their_parts() {
        assert_eq!(parts("INPUTS"), vec![inputs(&[])]);
        assert_eq!(parts("TASK_SOURCE"), vec![Part::TaskSource]);
        assert_eq!(parts("FLOW_PARAMETERS"), vec![Part::FlowParameters]);
        assert_eq!(parts("RUN_ID"), vec![Part::RunId]);
        assert_eq!(parts("KEY_FN"), vec![Part::KeyFn]);
        assert_eq!(parts("NONE"), vec![]);
        assert_eq!(parts("NO_CACHE"), vec![]);
        assert_eq!(parts("DEFAULT"), vec![inputs(&[]), Part::TaskSource, Part::RunId]);
    }

    #[test]
    fn none_is_the_identity_of_plus() {
        assert_eq!(parts("TASK_SOURCE + NONE"), vec![Part::TaskSource]);
        assert_eq!(parts("NONE + TASK_SOURCE"), vec![Part::TaskSource]);
        assert_eq!(parts("NO_CACHE + NONE"), vec![]);
        assert!(Policy::parse("NONE + NO_CACHE").unwrap().is_none());
    }

    #[test]
    fn plus_is_commutative_and_flattens() {
        let a = Policy::parse("TASK_SOURCE + RUN_ID").unwrap();
        let b = Policy::parse("RUN_ID + TASK_SOURCE").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            parts("(RUN_ID + (KEY_FN + FLOW_PARAMETERS)) + TASK_SOURCE"),
            vec![Part::TaskSource, Part::FlowParameters, Part::RunId, Part::KeyFn]
        );
        assert_eq!(parts("TASK_SOURCE + TASK_SOURCE"), vec![Part::TaskSource]);
    }

    #[test]
    fn inputs_merge_with_the_union_of_exclusions() {
        // Prefect: (INPUTS-'a')+(INPUTS-'b') -> Inputs(exclude=['a','b']) (reference 4.4).
        assert_eq!(parts("(INPUTS - 'a') + (INPUTS - 'b')"), vec![inputs(&["a", "b"])]);
        assert_eq!(parts("INPUTS - 'a' + INPUTS"), vec![inputs(&["a"])]);
        assert_eq!(parts("INPUTS - 'a' - \"b\""), vec![inputs(&["a", "b"])]);
        assert_eq!(parts("DEFAULT - 'debug'"), vec![inputs(&["debug"]), Part::TaskSource, Part::RunId]);
        assert_eq!(parts("TASK_SOURCE + INPUTS - 'x'"), vec![inputs(&["x"]), Part::TaskSource]);
    }

    #[test]
    fn minus_without_inputs_is_a_reported_noop() {
        let parsed = Policy::parse_reporting("TASK_SOURCE - 'x' + INPUTS").unwrap();
        // Left-associative: the exclusion applied to TASK_SOURCE alone, so INPUTS keeps 'x'.
        assert_eq!(parsed.policy.parts, vec![inputs(&[]), Part::TaskSource]);
        assert_eq!(parsed.noop_exclusions, vec![NoopExclusion { name: "x".into(), column: 13 }]);
        assert_eq!(
            parsed.noop_exclusions[0].to_string(),
            "column 13: `- 'x'` has no effect because the policy to its left has no INPUTS"
        );

        let parsed = Policy::parse_reporting("(RUN_ID + TASK_SOURCE) - 'x'").unwrap();
        assert_eq!(parsed.policy.parts, vec![Part::TaskSource, Part::RunId]);
        assert_eq!(parsed.noop_exclusions.len(), 1);
        assert_eq!(Policy::parse_reporting("NONE - 'x'").unwrap().noop_exclusions.len(), 1);
        assert!(Policy::parse_reporting("INPUTS - 'x'").unwrap().noop_exclusions.is_empty());
    }

    #[test]
    fn whitespace_is_free() {
        assert_eq!(
            Policy::parse("INPUTS-'a'+TASK_SOURCE").unwrap(),
            Policy::parse("  INPUTS\t-  'a'\n+ TASK_SOURCE  ").unwrap()
        );
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        let cases = [
            ("NONE", "NONE"),
            ("TASK_SOURCE + INPUTS - 'debug'", "INPUTS - 'debug' + TASK_SOURCE"),
            ("RUN_ID + TASK_SOURCE + INPUTS", "DEFAULT"),
            ("DEFAULT - 'b' - 'a' + KEY_FN", "DEFAULT - 'a' - 'b' + KEY_FN"),
            ("KEY_FN + FLOW_PARAMETERS + RUN_ID", "FLOW_PARAMETERS + RUN_ID + KEY_FN"),
            ("INPUTS - \"it's\"", "INPUTS - \"it's\""),
        ];
        for (text, canonical) in cases {
            let policy = Policy::parse(text).unwrap();
            assert_eq!(policy.to_string(), canonical, "{text}");
            assert_eq!(Policy::parse(&policy.to_string()).unwrap(), policy, "{text}");
        }
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        assert_eq!(
            error("INPUTS + TASK_SORCE"),
            "column 10: unknown policy name 'TASK_SORCE'; did you mean TASK_SOURCE?"
        );
        assert_eq!(error("inputs"), "column 1: unknown policy name 'inputs'; did you mean INPUTS?");
        assert!(error("CACHE_EVERYTHING").ends_with(&format!("expected {EXPECTED_NAME}")));
    }

    #[test]
    fn missing_operands_are_errors() {
        assert_eq!(
            error("INPUTS + + TASK_SOURCE"),
            format!("column 10: expected {EXPECTED_NAME} after '+', found '+'")
        );
        assert_eq!(
            error("INPUTS +"),
            format!("column 9: expected {EXPECTED_NAME} after '+', found the end of the expression")
        );
        assert_eq!(error("+ INPUTS"), format!("column 1: expected {EXPECTED_NAME}, found '+'"));
        assert_eq!(
            error("INPUTS -"),
            "column 9: '-' takes a quoted parameter name like 'debug', found the end of the expression"
        );
    }

    #[test]
    fn minus_needs_a_quoted_name() {
        assert_eq!(
            error("INPUTS - TASK_SOURCE"),
            "column 10: '-' takes a quoted parameter name like 'debug', found 'TASK_SOURCE'"
        );
        assert_eq!(error("INPUTS - ''"), "column 10: expected a parameter name between the quotes, found nothing");
    }

    #[test]
    fn unterminated_quotes_point_at_the_opening_quote() {
        assert_eq!(error("INPUTS - 'debug"), "column 10: unterminated quote: no closing ' after this one");
        assert_eq!(error("INPUTS - \"debug'"), "column 10: unterminated quote: no closing \" after this one");
    }

    #[test]
    fn trailing_input_is_an_error() {
        assert_eq!(
            error("INPUTS TASK_SOURCE"),
            "column 8: expected '+', '-' or the end of the expression, found 'TASK_SOURCE'"
        );
        assert_eq!(
            error("INPUTS - 'a' 'b'"),
            "column 14: expected '+', '-' or the end of the expression, found the quoted name 'b'"
        );
        assert_eq!(error("INPUTS * 2"), "column 8: unexpected character '*'");
    }

    #[test]
    fn empty_expressions_are_errors() {
        assert_eq!(error(""), format!("column 1: empty policy expression; expected {EXPECTED_NAME}"));
        assert_eq!(error("   "), format!("column 4: empty policy expression; expected {EXPECTED_NAME}"));
        assert_eq!(error("()"), format!("column 2: expected {EXPECTED_NAME}, found ')'"));
    }

    #[test]
    fn unbalanced_parentheses_are_errors() {
        assert_eq!(error("(INPUTS + TASK_SOURCE"), "column 1: unbalanced parentheses: this '(' is never closed");
        assert_eq!(error("INPUTS)"), "column 7: unmatched ')'");
        assert_eq!(error("(INPUTS RUN_ID)"), "column 9: expected '+', '-' or ')', found 'RUN_ID'");
    }

    #[test]
    fn deeply_nested_parentheses_are_an_error_not_a_stack_overflow() {
        // Regression (found by the fuzz run): 100,000 '(' overflowed the stack.
        let err = Policy::parse(&"(".repeat(100_000)).unwrap_err();
        assert_eq!(err.to_string(), "column 33: parentheses are nested deeper than 32 levels");
        let nested = format!("{}INPUTS{}", "(".repeat(32), ")".repeat(32));
        assert_eq!(Policy::parse(&nested).unwrap(), Policy::parse("INPUTS").unwrap());
    }

    #[test]
    fn caret_sits_under_the_column() {
        let text = "INPUTS + TASK_SORCE";
        let err = Policy::parse(text).unwrap_err();
        assert_eq!(err.caret(text), "INPUTS + TASK_SORCE\n         ^");
        let text = "\tINPUTS +";
        let err = Policy::parse(text).unwrap_err();
        assert_eq!(err.caret(text), "\tINPUTS +\n\t        ^");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(error("'é' + x"), format!("column 1: expected {EXPECTED_NAME}, found the quoted name 'é'"));
        assert_eq!(error("INPUTS - 'é' ?"), "column 14: unexpected character '?'");
    }
}
