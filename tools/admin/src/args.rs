//! The command line, parsed by hand: five subcommands and a handful of `--flag value` options
//! do not need an argument-parsing dependency.

use std::collections::BTreeMap;

/// The usage text, printed on `--help` and after every usage error.
pub const USAGE: &str = "\
usage: sandbox-admin [--table NAME] COMMAND [OPTIONS]

commands:
  create-table                                 create the table (nothing to do if it exists)
  create-key --user ID [--label TEXT]          issue an API key for a user; the key is printed
             [--key VALUE]                     once and only its SHA-256 hash is stored
                                               (--key stores a given key, e.g. a published
                                               local-only sample key, instead of a random one)
  list-keys                                    list keys: hash prefix, user, status, created, label
  disable-key --hash HEX                       disable a key by its hash or a unique prefix of it
  migrate-webhook-logs                         move delivery log entries written before issue 25
                                               to the paged layout, and due deliveries to their
                                               users' shards of the due index (once, after that
                                               deploy; running it again moves nothing)

The table is --table NAME, or TABLE_NAME from the environment. DynamoDB is found the AWS SDK's
usual way (AWS_REGION, AWS_PROFILE or the access-key variables); set AWS_ENDPOINT_URL_DYNAMODB
to use DynamoDB Local instead, e.g. http://127.0.0.1:8000.";

/// One subcommand with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `create-table`.
    CreateTable,
    /// `create-key`.
    CreateKey {
        /// `--user`: who the key authenticates as.
        user: String,
        /// `--label`: a note for operators, shown by `list-keys`.
        label: Option<String>,
        /// `--key`: store this key instead of generating one.
        key: Option<String>,
    },
    /// `list-keys`.
    ListKeys,
    /// `disable-key`.
    DisableKey {
        /// `--hash`: the key's hash or a unique prefix of it.
        hash: String,
    },
    /// `migrate-webhook-logs`.
    MigrateWebhookLogs,
    /// `help`, `--help` or `-h`.
    Help,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `--table`, when given (else `TABLE_NAME` applies).
    pub table: Option<String>,
    /// What to do.
    pub command: Command,
}

/// Parses the arguments after the program name. The error says what is wrong, for the user.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Invocation, String> {
    let mut name = None;
    let mut options = BTreeMap::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            name = Some("help".to_owned());
            break;
        }
        if let Some(flag) = arg.strip_prefix("--") {
            let (flag, value) = match flag.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), value.to_owned()),
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| format!("--{flag} needs a value"))?;
                    (flag.to_owned(), value)
                }
            };
            if options.insert(flag.clone(), value).is_some() {
                return Err(format!("--{flag} is given twice"));
            }
        } else if name.is_none() {
            name = Some(arg);
        } else {
            return Err(format!("unexpected argument {arg:?}"));
        }
    }
    let table = options.remove("table");
    let command = match name.as_deref() {
        None => return Err("no command given".into()),
        Some("help") => Command::Help,
        Some("create-table") => Command::CreateTable,
        Some("create-key") => Command::CreateKey {
            user: options
                .remove("user")
                .filter(|u| !u.trim().is_empty())
                .ok_or("create-key needs --user ID")?,
            label: options.remove("label"),
            key: options.remove("key"),
        },
        Some("list-keys") => Command::ListKeys,
        Some("migrate-webhook-logs") => Command::MigrateWebhookLogs,
        Some("disable-key") => Command::DisableKey {
            hash: options
                .remove("hash")
                .ok_or("disable-key needs --hash HEX")?,
        },
        Some(other) => return Err(format!("unknown command {other:?}")),
    };
    if let Some(flag) = options.keys().next() {
        return Err(format!("unknown option --{flag} for this command"));
    }
    Ok(Invocation { table, command })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Invocation, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn commands_and_options_in_any_order() {
        let got = parse_str("--table t create-key --label=dev --user u1").unwrap();
        assert_eq!(got.table.as_deref(), Some("t"));
        assert_eq!(
            got.command,
            Command::CreateKey {
                user: "u1".into(),
                label: Some("dev".into()),
                key: None
            }
        );
        assert_eq!(parse_str("list-keys").unwrap().command, Command::ListKeys);
        assert_eq!(
            parse_str("disable-key --hash abc").unwrap().command,
            Command::DisableKey { hash: "abc".into() }
        );
        assert_eq!(parse_str("create-key -h").unwrap().command, Command::Help);
        assert_eq!(
            parse_str("migrate-webhook-logs").unwrap().command,
            Command::MigrateWebhookLogs
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(parse_str("").unwrap_err(), "no command given");
        assert_eq!(
            parse_str("create-key").unwrap_err(),
            "create-key needs --user ID"
        );
        assert_eq!(
            parse_str("list-keys --user u").unwrap_err(),
            "unknown option --user for this command"
        );
        assert_eq!(
            parse_str("disable-key --hash").unwrap_err(),
            "--hash needs a value"
        );
        assert_eq!(
            parse_str("drop-table").unwrap_err(),
            "unknown command \"drop-table\""
        );
        assert_eq!(
            parse_str("list-keys extra").unwrap_err(),
            "unexpected argument \"extra\""
        );
    }
}
