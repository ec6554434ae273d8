use clap::Parser;
use okr_pulse::{
    auth::{self, TokenKeys},
    config::{Command, Config, RoleArg, TokenArgs},
    startup::{Application, shutdown_signal},
    telemetry,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    match &config.command {
        Some(Command::Token(args)) => {
            let keys = TokenKeys::from_secret(&auth::load_or_create_secret(&config)?);
            println!("{}", keys.mint_for(args)?);
            Ok(())
        }
        None | Some(Command::Serve) => serve(config).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(&config).await?;
    let admin = TokenArgs {
        org: config.default_org.clone(),
        email: format!("admin@{}.local", config.default_org),
        name: Some("Admin".to_owned()),
        sub: Some("admin".to_owned()),
        role: RoleArg::Admin,
        ttl: std::time::Duration::from_secs(30 * 24 * 3600).into(),
    };
    let token = app.keys().mint_for(&admin)?;
    let host = match config.listen_addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        ip => ip.to_string(),
    };
    let url = format!("http://{host}:{}/graphql", app.port());
    tracing::info!(%url, "okr-pulse is listening");
    println!(
        "\nokr-pulse is ready.\n  GraphiQL: {url}\n  Admin token for org '{}' (valid 30 days), as a request header:\n  {{\"Authorization\": \"Bearer {token}\"}}\n",
        config.default_org
    );
    app.run_until_stopped(shutdown_signal()).await
}
