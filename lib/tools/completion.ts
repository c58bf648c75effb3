/*
 * Shell completion for lklfuse and the tools. `PROG --completion [bash|zsh]` prints a
 * script to source (or to install where the shell looks for completions); when the user
 * presses Tab, the script runs `PROG --get-yargs-completions WORD...` (yargs' protocol: the
 * words so far, the last one being the word under completion) and offers what it prints,
 * one candidate a line.
 *
 * The answer comes from the program's own yargs option table, so it follows --help: option
 * names for a word that starts with "-"; the values an option knows after it (-o lists,
 * -t types, the shells of --completion); and nothing otherwise, which makes the shell fall
 * back to file names (IMAGE, MOUNTPOINT, SRC, DST, TARFILE are files). yargs' own default
 * answer lists every option for an empty word instead, which would hide the file names.
 */
import type { Argv } from 'yargs';

/** The flag the scripts call the program with (the one yargs' scripts use). */
export const COMPLETION_FLAG = '--get-yargs-completions';
export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

/** What yargs' getOptions() returns, as far as completion reads it. */
interface OptionTable {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
  boolean: string[];
  string: string[];
  hiddenOptions: string[];
  default: Record<string, unknown>;
}

/** One option as the user types it: its names (short and long) and whether a value follows. */
export interface Flag { key: string; names: string[]; takesValue: boolean; negatable: boolean }

export function flagsOf(y: Argv<any>): Flag[] {
  const o = (y as unknown as { getOptions(): OptionTable }).getOptions();
  const aliasOf = new Set(Object.values(o.alias).flat());
  const out: Flag[] = [];
  for (const key of Object.keys(o.key)) {
    if (aliasOf.has(key) || o.hiddenOptions.includes(key)) continue;
    const names = [key, ...(o.alias[key] ?? [])];
    out.push({
      key, names,
      takesValue: names.some((n) => o.string.includes(n)),
      negatable: o.boolean.includes(key) && o.default[key] === true,
    });
  }
  return out;
}

const dashed = (name: string) => (name.length === 1 ? '-' : '--') + name;

/**
 * The candidates for the last of `words` (words[0] is the program). `values(key, word)`
 * gives the candidates for the value of option `key` (its first name as declared), or
 * undefined for "a file name".
 */
export function complete(y: Argv<any>, words: string[], values: (key: string, word: string) => string[] | undefined): string[] {
  const cur = words.length > 1 ? words[words.length - 1]! : '';
  const prev = words.length > 2 ? words[words.length - 2]! : '';
  const flags = flagsOf(y);
  const prevFlag = prev.startsWith('-') && !prev.includes('=')
    ? flags.find((f) => f.names.some((n) => dashed(n) === prev)) : undefined;
  if (prevFlag?.takesValue) return (values(prevFlag.key, cur) ?? []).filter((v) => v.startsWith(cur));
  if (!cur.startsWith('-')) return [];
  const names = flags.flatMap((f) => [...f.names.map(dashed), ...(f.negatable ? [`--no-${f.key}`] : [])]);
  return names.filter((n) => n.startsWith(cur)).sort((a, b) => a.localeCompare(b));
}

/**
 * If `argv` is a completion request (the scripts put COMPLETION_FLAG first), prints the
 * candidates and returns true; the caller then exits 0 without parsing anything.
 */
export function answerCompletion(y: Argv<any>, argv: string[], values: (key: string, word: string) => string[] | undefined = () => undefined): boolean {
  if (argv[0] !== COMPLETION_FLAG) return false;
  const out = complete(y, argv.slice(1), (key, word) => key === 'completion' ? [...SHELLS] : values(key, word));
  process.stdout.write(out.map((c) => c + '\n').join(''));
  return true;
}

/** The option that prints the script, for .option('completion', COMPLETION_OPTION). */
export const COMPLETION_OPTION = {
  type: 'string',
  description: 'print the shell completion script for the shell named (bash or zsh; without a name: zsh if $SHELL is zsh, else bash) and exit',
} as const;

/** The shell a `--completion [SHELL]` value asks for; undefined for an unknown one. */
export function shellFor(value: string, env: NodeJS.ProcessEnv = process.env): Shell | undefined {
  const v = value === '' ? (/zsh$/.test(env.SHELL ?? '') ? 'zsh' : 'bash') : value;
  return (SHELLS as readonly string[]).includes(v) ? v as Shell : undefined;
}

/**
 * The completion script for `prog`. bash splits the line into COMP_WORDS at "=" and ":"
 * too (COMP_WORDBREAKS), and readline replaces only the text after the last such character:
 * so the script asks with the words of the line as typed (split at blanks, up to the
 * cursor) and strips from each answer the part of its word up to the last word-break
 * character. A single candidate ending in "=" or "," (an option that wants a value, a list
 * that goes on) gets no space after it.
 */
export function completionScript(prog: string, shell: Shell): string {
  const fn = `_${prog.replace(/[^A-Za-z0-9_]/g, '_')}_completion`;
  if (shell === 'bash') {
    return `# bash completion for ${prog}: source this file, or save it as
# ~/.local/share/bash-completion/completions/${prog} (it is what \`${prog} --completion bash\` prints)
${fn}() {
  local line="\${COMP_LINE:0:COMP_POINT}" wb="\${COMP_WORDBREAKS//[[:space:]]/}" cur prefix="" r
  local -a words replies
  read -ra words <<< "$line"
  [[ -z $line || $line == *[[:space:]] ]] && words+=("")
  cur="\${words[\${#words[@]}-1]}"
  if [[ -n $wb && $cur == *["$wb"]* ]]; then
    prefix="\${cur%"\${cur##*["$wb"]}"}"
  fi
  mapfile -t replies < <(${prog} ${COMPLETION_FLAG} "\${words[@]}" 2>/dev/null)
  COMPREPLY=()
  for r in "\${replies[@]}"; do
    [[ -n $r ]] && COMPREPLY+=("\${r#"$prefix"}")
  done
  if [[ \${#COMPREPLY[@]} -eq 1 && \${COMPREPLY[0]} == *[=,] ]]; then
    compopt -o nospace 2>/dev/null
  fi
  return 0
}
complete -o bashdefault -o default -F ${fn} ${prog}
`;
  }
  return `#compdef ${prog}
# zsh completion for ${prog}: source this file after compinit, or save it as _${prog} in a
# directory of $fpath (it is what \`${prog} --completion zsh\` prints)
${fn}() {
  local -a replies open plain
  replies=("\${(@f)$(${prog} ${COMPLETION_FLAG} "\${(@)words[1,CURRENT]}" 2>/dev/null)}")
  replies=(\${replies:#})
  if (( \${#replies} )); then
    open=(\${(M)replies:#*[=,]})
    plain=(\${replies:#*[=,]})
    (( \${#plain} )) && compadd -Q -- "\${plain[@]}"
    (( \${#open} )) && compadd -Q -S '' -- "\${open[@]}"
  else
    _files
  fi
}
if [[ "\${zsh_eval_context[-1]}" == loadautofunc ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${prog}
fi
`;
}

/** Handles `--completion [SHELL]` after parsing: prints the script; returns the exit status. */
export function printCompletionScript(prog: string, value: string): number {
  const shell = shellFor(value);
  if (!shell) {
    process.stderr.write(`${prog}: --completion: unknown shell '${value}' (bash or zsh)\n`);
    return 1;
  }
  process.stdout.write(completionScript(prog, shell));
  return 0;
}
