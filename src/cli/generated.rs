//! Files generated from the clap tree: the man pages (one for vgpu-admin, one per command) and
//! the completion scripts for bash, zsh and fish. `man`, `completions` and `install` use them.

use super::args::command_tree;
use crate::scripts::Command as ScriptCommand;

/// The program name the pages and completions are for.
const BIN: &str = "vgpu-admin";

/// The man pages: `vgpu-admin.1` (which lists the commands) first, then `vgpu-admin-<command>.1`
/// for every command (hidden ones left out), each as (file name, roff text).
pub fn man_pages(commands: &[ScriptCommand]) -> Vec<(String, Vec<u8>)> {
    let mut tree = command_tree(commands).disable_help_subcommand(true);
    tree.build();
    let mut pages = Vec::new();
    for cmd in std::iter::once(&tree).chain(tree.get_subcommands().filter(|s| !s.is_hide_set())) {
        let man = clap_mangen::Man::new(cmd.clone());
        let mut roff = Vec::new();
        // Rendering into memory cannot fail.
        let _ = man.render(&mut roff);
        pages.push((man.get_filename(), roff));
    }
    pages
}

/// The man page of `command` (`None`: the main page), if there is such a command.
pub fn man_page(commands: &[ScriptCommand], command: Option<&str>) -> Option<Vec<u8>> {
    let wanted = match command {
        None => format!("{BIN}.1"),
        Some(name) => format!("{BIN}-{name}.1"),
    };
    man_pages(commands)
        .into_iter()
        .find(|(file, _)| *file == wanted)
        .map(|(_, roff)| roff)
}

/// The shells completion scripts are made for, with the file each is installed as.
pub const SHELLS: &[(&str, &str)] = &[
    ("bash", "usr/share/bash-completion/completions/vgpu-admin"),
    ("zsh", "usr/share/zsh/site-functions/_vgpu-admin"),
    (
        "fish",
        "usr/share/fish/vendor_completions.d/vgpu-admin.fish",
    ),
];

/// The completion script for `shell` (`bash`, `zsh` or `fish`).
///
/// Options, their values (pools, priorities, choices) and commands come from the clap tree;
/// VM uuids and names come from `vgpu-admin complete`, asked at each Tab (the database, or one
/// xe listing for commands that take unregistered VMs).
pub fn completion_script(commands: &[ScriptCommand], shell: &str) -> Vec<u8> {
    let generator = match shell {
        "zsh" => clap_complete::Shell::Zsh,
        "fish" => clap_complete::Shell::Fish,
        _ => clap_complete::Shell::Bash,
    };
    let mut tree = command_tree(commands);
    let mut script = Vec::new();
    clap_complete::generate(generator, &mut tree, BIN, &mut script);
    let mut text = String::from_utf8_lossy(&script).into_owned();
    match shell {
        "bash" => {
            // clap_complete names the per-command cases of a hyphenated program inconsistently
            // (`vgpu__admin__subcmd__x` is set, `vgpu__subcmd__admin__subcmd__x` is matched), so
            // nothing after a command completed: make the matched names the set ones.
            text = text.replace("vgpu__subcmd__admin__", "vgpu__admin__");
            // Our function runs first: VM uuids and names, then clap's for everything else.
            text = text.replace(
                "complete -F _vgpu__admin ",
                "complete -F _vgpu_admin_complete ",
            );
            text.push_str(BASH_VMS);
        }
        "fish" => text.push_str(FISH_VMS),
        "zsh" => {
            // Values of kind uuid and name are VMs.
            text = text
                .replace(":uuid:_default'", ":uuid:_vgpu_admin_vms vm-uuid'")
                .replace(":name:_default'", ":name:_vgpu_admin_vms vm-name'");
            text.push_str(ZSH_VMS);
        }
        _ => {}
    }
    text.into_bytes()
}

/// Bash: `--vm-uuid`/`--vm-name` values from `vgpu-admin complete`, the rest from clap's script.
const BASH_VMS: &str = r#"
# VM uuids and names: asked from vgpu-admin itself (the database; xe only for commands that
# take VMs not registered yet), with the --db/--xe given on the line.
_vgpu_admin_complete() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" option=""
    if [[ "$cur" == "=" ]]; then
        option="$prev"; cur=""
    elif [[ "$prev" == "=" && $COMP_CWORD -ge 2 ]]; then
        option="${COMP_WORDS[COMP_CWORD-2]}"
    else
        option="$prev"
    fi
    if [[ "$option" == "--vm-uuid" || "$option" == "--vm-name" ]]; then
        local global=() command="" i
        for ((i = 1; i < COMP_CWORD; i++)); do
            case "${COMP_WORDS[i]}" in
                --db|--xe|--scripts) global+=("${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}") ;;
                -*|=) ;;
                *) [[ -z "$command" && "${COMP_WORDS[i-1]}" != --db && "${COMP_WORDS[i-1]}" != --xe \
                      && "${COMP_WORDS[i-1]}" != --scripts && "${COMP_WORDS[i-1]}" != = ]] \
                      && command="${COMP_WORDS[i]}" ;;
            esac
        done
        local IFS=$'\n'
        COMPREPLY=($(vgpu-admin "${global[@]}" complete "${option#--}" "$cur" --command "$command" 2>/dev/null))
        # A name with spaces or quotes is inserted as one word.
        for i in "${!COMPREPLY[@]}"; do
            COMPREPLY[i]=$(printf '%q' "${COMPREPLY[i]}")
        done
        return 0
    fi
    _vgpu__admin "$@"
}

"#;

/// Fish: VM uuids and names from `vgpu-admin complete`.
const FISH_VMS: &str = r#"
# VM uuids and names, asked from vgpu-admin itself.
complete -c vgpu-admin -l vm-uuid -x -a '(vgpu-admin complete vm-uuid (commandline -ct | string replace -r "^--vm-uuid=" "") --command (commandline -opc)[2] 2>/dev/null)'
complete -c vgpu-admin -l vm-name -x -a '(vgpu-admin complete vm-name (commandline -ct | string replace -r "^--vm-name=" "") --command (commandline -opc)[2] 2>/dev/null)'
"#;

/// Zsh: the value of `--vm-uuid`/`--vm-name` from `vgpu-admin complete`.
const ZSH_VMS: &str = r#"
# VM uuids and names, asked from vgpu-admin itself.
_vgpu_admin_vms() {
    local -a vms
    vms=("${(@f)$(vgpu-admin complete "$1" "$PREFIX" --command "${words[2]}" 2>/dev/null)}")
    compadd -a vms
}
"#;
