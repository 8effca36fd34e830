"""click's own words (Usage, Options, Error: Missing option…) in Chinese, so that --help and a
mistyped command read like the rest of mailproc. click looks every one of them up through
`gettext` at the moment it prints; `install` points those look-ups in click's modules at the
table below. A string not in the table stays as click wrote it."""

import importlib

import click
import click.formatting

from mailproc.display import display_width

WORDS = {
    "Usage:": "用法：",
    "Options": "选项",
    "Commands": "命令",
    "Positional arguments": "参数",
    "Show this message and exit.": "显示本说明后退出。",
    "Show the version and exit.": "显示版本后退出。",
    "Error: {message}": "错误：{message}",
    "Try '{command} {option}' for help.": "可运行 '{command} {option}' 查看说明。",
    "Aborted!": "已取消。",
    "Missing command.": "缺少命令。",
    "No such command {name!r}.": "没有命令 {name!r}。",
    "No such option {name!r}.": "没有选项 {name!r}。",
    "No such option: {name}": "没有选项：{name}",
    "Missing argument": "缺少参数",
    "Missing option": "缺少选项",
    "Missing parameter": "缺少参数",
    "Missing {param_type}": "缺少{param_type}",
    "Missing parameter: {param_name}": "缺少参数：{param_name}",
    "Invalid value: {message}": "取值无效：{message}",
    "Invalid value for {param_hint}: {message}": "{param_hint} 的取值无效：{message}",
    "Option {name!r} does not take a value.": "选项 {name!r} 不带取值。",
    "Argument {name!r} takes {nargs} values.": "参数 {name!r} 需要 {nargs} 个取值。",
    "{value!r} is not a valid {number_type}.": "{value!r} 不是有效的{number_type}。",
    "{value!r} is not a valid UUID.": "{value!r} 不是有效的编号。",
    "integer": "整数",
    "float": "数字",
    "{value} is not in the range {range}.": "{value} 不在 {range} 范围内。",
    "{name} {filename!r} does not exist.": "{name} {filename!r} 不存在。",
    "{name} {filename!r} is a file.": "{name} {filename!r} 是文件。",
    "{name} {filename!r} is a directory.": "{name} {filename!r} 是文件夹。",
    "{name} {filename!r} is not readable.": "{name} {filename!r} 无法读取。",
    "{name} {filename!r} is not writable.": "{name} {filename!r} 无法写入。",
    "file": "文件",
    "directory": "文件夹",
    "path": "路径",
    "env var: {var}": "环境变量：{var}",
    "default: {default}": "默认：{default}",
    "required": "必填",
    "Choose from:\n\t{choices}": "可选：\n\t{choices}",
    "Error: invalid input": "错误：输入无效",
    "Error: The two entered values do not match.": "错误：两次输入不一致。",
    "Repeat for confirmation": "请再输入一次",
    "Do you want to continue?": "是否继续？",
    "Confirm the action without prompting.": "不再询问，直接办理。",
    "unknown error": "未知错误",
    "Could not open file {filename!r}: {message}": "无法打开文件 {filename!r}：{message}",
}
PLURAL_WORDS = {
    "Got unexpected extra argument ({args})": "多余的参数（{args}）",
    "Did you mean {possibility}?": "是否要写 {possibility}？",
    "Option {name!r} requires an argument.": "选项 {name!r} 需要取值。",
    "{value!r} is not {choice}.": "{value!r} 不在可选范围内：{choices}。",
    "Takes {nargs} values but 1 was given.": "需要 {nargs} 个取值，给了 {len} 个。",
}
MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "termui", "types")
# What a value is called where --help shows its place (--period 文字)
TYPE_NAMES = {"StringParamType": "文字", "IntParamType": "整数", "FloatParamType": "数字"}


def translate(message: str) -> str:
    return WORDS.get(message, message)


def translate_plural(singular: str, plural: str, count: int) -> str:
    """click's singular and plural forms: Chinese has one, found by the singular."""
    if singular in PLURAL_WORDS:
        return PLURAL_WORDS[singular]
    return singular if count == 1 else plural


def install() -> None:
    """Point click's look-ups at the tables above (once; repeating it changes nothing)."""
    for name in MODULES:
        module = importlib.import_module(f"click.{name}")
        if hasattr(module, "_"):
            module._ = translate
        if hasattr(module, "ngettext"):
            module.ngettext = translate_plural
    for type_name, word in TYPE_NAMES.items():
        getattr(click.types, type_name).name = word
    click.formatting.term_len = display_width  # --help's columns line up under Chinese words


def localize(command: click.Command) -> None:
    """The usage line's placeholders ([OPTIONS] COMMAND [ARGS]...) in Chinese, for `command`
    and every subcommand under it."""
    command.options_metavar = "[选项]"
    if isinstance(command, click.Group):
        command.subcommand_metavar = "命令 [参数]..."
        for subcommand in command.commands.values():
            localize(subcommand)
