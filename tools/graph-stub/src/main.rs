//! `graph-stub`: runs the Graph API stand-in, or signs a webhook body the way Meta does.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use graph_stub::server::{self, Config};

const USAGE: &str = "\
usage: graph-stub [serve] [OPTIONS]
       graph-stub sign [--secret SECRET] < body.json

serve (the default) runs a local stand-in for Meta's Graph API, for development only.
Each option falls back to the environment variable in brackets, then to the default.
  --port N                 listen on 127.0.0.1:N               [GRAPH_STUB_PORT] 9100
  --phone-number-id ID     the sandbox number sends must name  [SANDBOX_PHONE_NUMBER_ID] 109876543210987
  --display-number NUMBER  the sandbox number replies answer   [SANDBOX_DISPLAY_NUMBER] +12029087457
  --access-token TOKEN     the only Bearer token accepted      [META_ACCESS_TOKEN] any token
  --app-secret SECRET      signs the webhook deliveries        [META_APP_SECRET] dev-app-secret
  --webhook-url URL        where the phone owner's replies go  [GRAPH_STUB_WEBHOOK_URL]
                           http://127.0.0.1:9000/v1/whatsapp/webhook
  --reply-delay-ms N       the phone's reaction time           [GRAPH_STUB_REPLY_DELAY_MS] 1000
  --no-auto-reply          no statuses, no replies             [GRAPH_STUB_AUTO_REPLY=0]
Accepted sends (template, text, interactive) get sent/delivered/read statuses, then a reply:
the template's button is tapped, a text is echoed, an interactive message's first choice picked.
Sends to +34 600 000 000 .. +34 600 000 099 are refused with Meta's error 131030.

sign prints the X-Hub-Signature-256 header value for the exact bytes on standard input.
  --secret SECRET          the Meta app secret                 [META_APP_SECRET] dev-app-secret";

/// What the command line asks for.
#[derive(Debug)]
enum Cli {
    Serve { port: u16, config: Config },
    Sign { secret: String },
    Help,
}

#[tokio::main]
async fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let cli = match parse(std::env::args().skip(1).collect(), env) {
        Ok(cli) => cli,
        Err(message) => {
            eprintln!("graph-stub: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match cli {
        Cli::Help => println!("{USAGE}"),
        Cli::Sign { secret } => {
            let mut body = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut body) {
                eprintln!("graph-stub: cannot read standard input: {e}");
                return ExitCode::FAILURE;
            }
            println!(
                "{}",
                sandbox::meta::signature::sign(secret.as_bytes(), &body)
            );
        }
        Cli::Serve { port, config } => {
            if let Err(e) = server::run(port, config).await {
                eprintln!(
                    "graph-stub: cannot serve on 127.0.0.1:{port}: {e}\n\
                     (another program uses the port? choose one with --port or GRAPH_STUB_PORT)"
                );
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Parses the arguments after the program name; `env` looks up the fallback variables.
fn parse(args: Vec<String>, env: impl Fn(&str) -> Option<String>) -> Result<Cli, String> {
    let mut args = args.into_iter().peekable();
    let command = match args.peek().map(String::as_str) {
        Some("serve" | "sign" | "help") => args.next(),
        _ => None,
    };
    let mut flags = Flags::parse(args)?;
    if command.as_deref() == Some("help") || flags.switch("help") {
        return Ok(Cli::Help);
    }
    let cli = if command.as_deref() == Some("sign") {
        let secret = flags
            .value("secret")
            .or_else(|| env("META_APP_SECRET"))
            .unwrap_or_else(|| "dev-app-secret".into());
        Cli::Sign { secret }
    } else {
        let auto_reply =
            !flags.switch("no-auto-reply") && env("GRAPH_STUB_AUTO_REPLY").as_deref() != Some("0");
        let mut get = |name: &str, var: &str, default: &str| {
            flags
                .value(name)
                .or_else(|| env(var))
                .unwrap_or_else(|| default.to_owned())
        };
        let port = get("port", "GRAPH_STUB_PORT", "9100");
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("the port must be a number up to 65535, not {port:?}"))?;
        let delay = get("reply-delay-ms", "GRAPH_STUB_REPLY_DELAY_MS", "1000");
        let delay = delay
            .parse::<u64>()
            .map_err(|_| format!("the reply delay must be milliseconds, not {delay:?}"))?;
        let display = get("display-number", "SANDBOX_DISPLAY_NUMBER", "+12029087457");
        let access_token = get("access-token", "META_ACCESS_TOKEN", "");
        let config = Config {
            phone_number_id: get(
                "phone-number-id",
                "SANDBOX_PHONE_NUMBER_ID",
                "109876543210987",
            ),
            display_number: display.chars().filter(char::is_ascii_digit).collect(),
            access_token: Some(access_token).filter(|t| !t.is_empty()),
            app_secret: get("app-secret", "META_APP_SECRET", "dev-app-secret"),
            webhook_url: get(
                "webhook-url",
                "GRAPH_STUB_WEBHOOK_URL",
                "http://127.0.0.1:9000/v1/whatsapp/webhook",
            ),
            auto_reply,
            reply_delay: Duration::from_millis(delay),
        };
        Cli::Serve { port, config }
    };
    flags.finish()?;
    Ok(cli)
}

/// `--name value`, `--name=value` and bare switches, consumed as the parser asks for them.
struct Flags(Vec<(String, Option<String>)>);

impl Flags {
    /// Switches take no value; every other flag does.
    const SWITCHES: [&'static str; 2] = ["help", "no-auto-reply"];

    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut flags = Vec::new();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            flags.push(match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None if Self::SWITCHES.contains(&flag) => (flag.to_owned(), None),
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| format!("--{flag} needs a value"))?;
                    (flag.to_owned(), Some(value))
                }
            });
        }
        Ok(Self(flags))
    }

    /// Takes `--name`'s value, if given.
    fn value(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        self.0.remove(at).1
    }

    /// Takes a switch: whether it was given.
    fn switch(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|(n, _)| n != name);
        self.0.len() != before
    }

    /// Fails on whatever the parser did not ask for.
    fn finish(self) -> Result<(), String> {
        match self.0.first() {
            Some((name, _)) => Err(format!("unknown option --{name}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse_with(line: &str, vars: &[(&str, &str)]) -> Result<Cli, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let args = line.split_whitespace().map(str::to_owned).collect();
        parse(args, |name| vars.get(name).cloned())
    }

    #[test]
    fn flags_override_environment_which_overrides_defaults() {
        let vars = [("GRAPH_STUB_PORT", "9200"), ("META_APP_SECRET", "from-env")];
        let Ok(Cli::Serve { port, config }) = parse_with("--app-secret=flag", &vars) else {
            panic!("expected serve");
        };
        assert_eq!(port, 9200);
        assert_eq!(config.app_secret, "flag");
        assert_eq!(config.phone_number_id, "109876543210987");
        assert_eq!(config.display_number, "12029087457");
        assert_eq!(config.access_token, None);
        assert!(config.auto_reply);
        assert_eq!(config.reply_delay, Duration::from_secs(1));
    }

    #[test]
    fn auto_reply_can_be_turned_off_either_way() {
        for (line, vars) in [
            ("serve --no-auto-reply", vec![]),
            ("", vec![("GRAPH_STUB_AUTO_REPLY", "0")]),
        ] {
            let Ok(Cli::Serve { config, .. }) = parse_with(line, &vars) else {
                panic!("expected serve");
            };
            assert!(!config.auto_reply, "{line:?} {vars:?}");
        }
    }

    #[test]
    fn sign_takes_the_secret_and_mistakes_are_named() {
        let Ok(Cli::Sign { secret }) = parse_with("sign --secret s3", &[]) else {
            panic!("expected sign");
        };
        assert_eq!(secret, "s3");
        assert!(matches!(parse_with("--help", &[]), Ok(Cli::Help)));
        assert_eq!(
            parse_with("--port nine", &[]).unwrap_err(),
            "the port must be a number up to 65535, not \"nine\""
        );
        assert_eq!(
            parse_with("--colour red", &[]).unwrap_err(),
            "unknown option --colour"
        );
        assert_eq!(
            parse_with("sign --port 1", &[]).unwrap_err(),
            "unknown option --port"
        );
    }
}
