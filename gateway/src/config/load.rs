//! Reading a config file: `${ENV}` interpolation, then strict YAML parsing.

use std::path::Path;

use super::Config;
use crate::GatewayError;

/// Reads, interpolates, parses and validates the file at `path`; policy `*_file`
/// expressions are read relative to its directory.
pub fn load_file(path: &Path) -> Result<Config, GatewayError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| GatewayError::Config(vec![format!("{}: {e}", path.display())]))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse_str_at(&text, &|name| std::env::var(name).ok(), dir)
}

/// Interpolates with `env`, parses, and validates `text`; policy files are read relative to
/// the current directory.
pub fn parse_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, GatewayError> {
    parse_str_at(text, env, Path::new("."))
}

/// [`parse_str`] for a config whose policy files are relative to `dir`.
pub fn parse_str_at(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    dir: &Path,
) -> Result<Config, GatewayError> {
    let text = interpolate_env(text, env).map_err(GatewayError::Config)?;
    let mut config: Config =
        serde_saphyr::from_str(&text).map_err(|e| GatewayError::Config(vec![e.to_string()]))?;
    aws_from_env(&mut config, env);
    let unread = config.policy.read_files(dir);
    if !unread.is_empty() {
        return Err(GatewayError::Config(unread));
    }
    let problems = config.validate();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(GatewayError::Config(
            problems.into_iter().map(|p| p.to_string()).collect(),
        ))
    }
}

/// Bedrock providers without credentials or region in the file take them from the
/// standard AWS environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`), as the AWS SDKs do.
fn aws_from_env(config: &mut Config, env: &dyn Fn(&str) -> Option<String>) {
    for p in config
        .providers
        .iter_mut()
        .filter(|p| p.kind == datamind_llm::ProviderKind::Bedrock)
    {
        if p.region.is_none() {
            p.region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
        }
        if p.aws_access_key_id.is_none() && p.aws_secret_access_key.is_none() {
            p.aws_access_key_id = env("AWS_ACCESS_KEY_ID");
            p.aws_secret_access_key = env("AWS_SECRET_ACCESS_KEY");
            p.aws_session_token = p
                .aws_session_token
                .take()
                .or_else(|| env("AWS_SESSION_TOKEN"));
        }
    }
}

/// Replaces `${NAME}` and `${NAME:-default}` outside comment lines; `$${` is a literal `${`.
/// Every unset variable without a default is reported with its line.
pub fn interpolate_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(pos) = rest.find("${") {
            if rest[..pos].ends_with('$') {
                out.push_str(&rest[..pos - 1]);
                out.push_str("${");
                rest = &rest[pos + 2..];
                continue;
            }
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 2..];
            let Some(end) = after.find('}') else {
                problems.push(format!("line {}: unterminated ${{", n + 1));
                out.push_str(&rest[pos..]);
                rest = "";
                break;
            };
            let expr = &after[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            match (valid, env(name), default) {
                (false, _, _) => {
                    problems.push(format!("line {}: invalid variable name `{name}`", n + 1))
                }
                (true, Some(v), _) => out.push_str(&v),
                (true, None, Some(d)) => out.push_str(d),
                (true, None, None) => problems.push(format!(
                    "line {}: environment variable {name} is not set",
                    n + 1
                )),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "sk-123".to_owned())
    }

    #[test]
    fn interpolates_defaults_escapes_and_skips_comments() {
        let t = "a: ${KEY}\nb: ${NOPE:-x}\n# c: ${MISSING}\nd: $${KEY}\n";
        assert_eq!(
            interpolate_env(t, &env).unwrap(),
            "a: sk-123\nb: x\n# c: ${MISSING}\nd: ${KEY}\n"
        );
    }

    #[test]
    fn reports_every_unset_variable_with_its_line() {
        let e = interpolate_env("a: ${A}\nb: ok\nc: ${C}\n", &env).unwrap_err();
        assert_eq!(
            e,
            vec![
                "line 1: environment variable A is not set",
                "line 3: environment variable C is not set"
            ]
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = parse_str(
            "server: {listen: 'a:1', admin_listen: 'b:2', bogus: 1}\n",
            &env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn bedrock_takes_credentials_from_the_aws_environment() {
        let yaml = "server: {listen: '127.0.0.1:1', admin_listen: '127.0.0.1:2'}\nauth: {enabled: false}\n\
                    providers: [{name: b, kind: bedrock, base_url: 'https://bedrock-runtime.us-east-1.amazonaws.com'}]\n";
        let aws = |n: &str| match n {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
            "AWS_DEFAULT_REGION" => Some("eu-west-1".to_owned()),
            _ => None,
        };
        let c = parse_str(yaml, &aws).unwrap();
        assert_eq!(c.providers[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.providers[0].aws_access_key_id.as_deref(), Some("AKID"));
        let e = parse_str(yaml, &|_| None).unwrap_err().to_string();
        assert!(
            e.contains("providers[0].aws_access_key_id: required for kind `bedrock`"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_default_config_is_valid() {
        let text = include_str!("../../../config/gateway.yaml");
        let c = parse_str(text, &env).unwrap();
        assert!(c.providers.iter().any(|p| p.name == "mock"));
    }
}
