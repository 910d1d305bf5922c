//! `prossimo users`: the people who sign in to the console.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use prossimo_console::users::{Role, Users};
use prossimo_store::Store;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// List console users with their roles.
    List,
    /// Add a console user. The password is read from PROSSIMO_USER_PASSWORD, or from the
    /// first line of standard input (`echo "$PW" | prossimo users create …`), or asked for
    /// on the terminal (not echoed).
    Create {
        /// E-mail address, used to sign in.
        email: String,
        /// admin (keys, users, settings), marketer (audiences), viewer (read only).
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Name shown in the console.
        #[arg(long)]
        name: Option<String>,
    },
    /// Set a new password (read as for `create`); signs the user out everywhere.
    SetPassword { email: String },
    /// Change a user's role.
    SetRole { email: String, role: String },
    /// Stop a user from signing in and end their sessions.
    Disable { email: String },
    /// Let a disabled user sign in again.
    Enable { email: String },
}

pub fn run(store: &Store, cmd: UsersCommand) -> Result<()> {
    let users = Users::of(store)?;
    match cmd {
        UsersCommand::List => {
            println!("{:<36} {:<9} {:<8} name", "e-mail", "role", "state");
            for u in users.list()? {
                let state = if u.disabled { "disabled" } else { "active" };
                println!(
                    "{:<36} {:<9} {:<8} {}",
                    u.email,
                    u.role,
                    state,
                    u.name.unwrap_or_default()
                );
            }
        }
        UsersCommand::Create { email, role, name } => {
            let role: Role = role.parse()?;
            let hash = prossimo_console::hash_password(&read_password()?)?;
            let user = users.create(&email, name.as_deref(), role, &hash)?;
            println!("created {} ({})", user.email, user.role);
        }
        UsersCommand::SetPassword { email } => {
            let hash = prossimo_console::hash_password(&read_password()?)?;
            users.update(&email, None, Some(&hash), None)?;
            println!("password changed for {email}; their sessions have ended");
        }
        UsersCommand::SetRole { email, role } => {
            let user = users.update(&email, Some(role.parse()?), None, None)?;
            println!("{} is now {}", user.email, user.role);
        }
        UsersCommand::Disable { email } => {
            users.update(&email, None, None, Some(true))?;
            println!("{email} can no longer sign in");
        }
        UsersCommand::Enable { email } => {
            users.update(&email, None, None, Some(false))?;
            println!("{email} can sign in again");
        }
    }
    Ok(())
}

fn read_password() -> Result<String> {
    if let Ok(password) = std::env::var("PROSSIMO_USER_PASSWORD") {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        // Asked for on a terminal: not echoed.
        rpassword::prompt_password(format!(
            "password (at least {} characters): ",
            prossimo_console::MIN_PASSWORD
        ))
        .context("cannot read the password from the terminal")?
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("no password given: set PROSSIMO_USER_PASSWORD or pipe it on standard input");
    }
    Ok(password)
}
