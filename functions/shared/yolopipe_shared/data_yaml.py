"""data.yaml, the dataset's untrusted marker: the rules it must pass before anyone trains on it.

One implementation, three users: the trigger function (on an S3 prefix), `yolopipe dataset
validate` / `yolopipe upload` (on a local folder) and `training_code/train.py` (on the channel
folder). Pure Python + PyYAML: it ships in the functions' layer and in the training-code tarball.

data.yaml is untrusted input (anyone who can write to the bucket wrote it):

- parsed with PyYAML's SafeLoader only (no `!!python/...` tags), at most 1 MiB and MAX_YAML_NODES
  values, counted with YAML aliases expanded (`load_untrusted_yaml`: a few hundred bytes of nested
  aliases would otherwise stand for billions of values to whatever walks them);
- a `download` key is refused, whatever its value: Ultralytics runs it as a URL, a shell command
  or Python when the val images are missing;
- split paths (`train`, `val`, `test`; a string or a list; folders of images or .txt lists of
  images) are relative to the folder holding data.yaml: absolute paths, URLs, backslashes and
  paths that climb out of that folder (`../`) are refused, except what Ultralytics itself reads
  inside the dataset: one string split `../x` that lies outside is read as `x` (Roboflow exports
  write `train: ../train/images` beside `train/`; see roboflow_fallback);
- `path`: consumers rewrite it to wherever the dataset lies (the training channel, a temp dir),
  so it may only point *inside* the dataset: missing, empty or `.` (the usual), or a relative
  folder inside it (the split paths are then relative to that folder). An absolute or escaping
  `path` (`/content/datasets/x`, `../datasets/x`) is refused: set `path: .` or remove it;
- `names` is a list, or a mapping {id: name} with ids 0..n-1 without gaps; `nc`, when present,
  equals the number of names (`nc` alone gives names class_0..class_{nc-1}, with a warning); at
  most MAX_CLASSES classes;
- `train` and `val` are required (`validation` is read as `val`, as Ultralytics does).

Problems carry the data.yaml line they come from (PyYAML node marks).
"""


from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

import yaml

DATA_YAML = "data.yaml"
MAX_DATA_YAML_BYTES = 1 << 20
#: Most classes a dataset may have. Real detection vocabularies are far below it (COCO 80, Objects365
#: 365, Open Images 600, LVIS 1,203); `nc: 100000000` would otherwise build a hundred million names
#: (gigabytes) in the trigger, the CLI and train.py before anything else is checked.
MAX_CLASSES = 10_000
#: Most YAML values (scalars, lists, mappings; aliases expanded) in a data.yaml: MAX_CLASSES names
#: as a mapping (two values each) and a few splits fit with room to spare.
MAX_YAML_NODES = 4 * MAX_CLASSES
SPLITS = ("train", "val", "test")
REQUIRED_SPLITS = ("train", "val")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: the file (relative to the dataset root), its line, what to do."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class DataYaml:
    """A data.yaml that passed the rules.

    `splits` maps split name -> image folders or .txt list files, as paths relative to the folder
    holding data.yaml (already joined with `path`, normalised, never escaping). `root` is the
    normalised `path` field ("." normally). `raw` is the document as loaded (untrusted: read it,
    never hand it to Ultralytics as is; use `for_ultralytics`).
    """

    names: list[str]
    splits: dict[str, list[str]]
    raw: dict[str, Any]
    root: str = "."
    warnings: list[Problem] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # top-level key -> its line in data.yaml

    @property
    def nc(self) -> int:
        return len(self.names)

    def for_ultralytics(self, dataset_dir: str) -> dict[str, Any]:
        """The data.yaml content to give Ultralytics for a dataset lying in `dataset_dir`.

        Only the keys we checked: `path` is `dataset_dir`, splits are relative to it, names are
        {id: name}. No `download`, whatever the original said.
        """
        doc: dict[str, Any] = {"path": str(dataset_dir)}
        for split, entries in self.splits.items():
            doc[split] = entries[0] if len(entries) == 1 else list(entries)
        doc["nc"] = self.nc
        doc["names"] = dict(enumerate(self.names))
        for key in ("kpt_shape", "flip_idx", "channels"):  # typed by parse_data_yaml when present
            if self.raw.get(key) is not None:
                doc[key] = self.raw[key]
        return doc


def parse_data_yaml(text: str, *, file: str = DATA_YAML) -> tuple[DataYaml | None, list[Problem]]:
    """Apply the data.yaml rules to `text`; return (DataYaml, []) or (None, problems)."""
    parsed, problems = parse_data_yaml_partly(text, file=file)
    return (None, problems) if problems or parsed is None else (parsed, [])


def parse_data_yaml_partly(text: str, *, file: str = DATA_YAML) -> tuple[DataYaml | None, list[Problem]]:
    """Every problem of `text`, and what of it is still usable: the class names and the splits that
    passed, or None when the document or its names are unusable. Validation checks the dataset's
    files and labels with it, so one pass reports data.yaml and label problems together; nothing may
    train on a DataYaml that came with problems."""
    problems: list[Problem] = []

    def problem(line: int | None, message: str) -> None:
        problems.append(Problem(file, line, message))

    if len(text) > MAX_DATA_YAML_BYTES:
        problem(None, f"is {len(text):,} characters; a data.yaml is a few lines (at most 1 MiB)")
        return None, problems
    try:
        node, data = load_untrusted_yaml(text, max_nodes=MAX_YAML_NODES)
    except YamlTooLarge as exc:
        problem(exc.line, f"{exc}; a data.yaml is a short mapping")
        return None, problems
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem(
            mark.line + 1 if mark else None,
            f"YAML tag not allowed ({exc.problem}); write plain YAML without !!python or other tags",
        )
        return None, problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        problem(mark.line + 1 if mark else None, f"not valid YAML ({what}); fix the syntax")
        return None, problems
    except yaml.YAMLError as exc:  # e.g. a reader error on control characters
        problem(None, f"not valid YAML ({str(exc).splitlines()[0][:120]}); fix the syntax")
        return None, problems
    except RecursionError:
        problem(None, "nests too deeply to be a data.yaml; write a flat mapping")
        return None, problems

    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        problem(
            None,
            "must be a YAML mapping with `train`, `val` and `names` "
            "(e.g. `train: images/train`, `val: images/val`, `names: [cat, dog]`)",
        )
        return None, problems

    lines: dict[str, int] = {}
    value_nodes: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
        if key is None:
            continue
        line = key_node.start_mark.line + 1
        if key in lines and key != "<<":
            problem(line, f"`{key}` appears twice (lines {lines[key]} and {line}); keep one")
        lines.setdefault(key, line)
        value_nodes[key] = value_node

    # Merge keys (`<<: *anchor`) can bring keys in from elsewhere: check the constructed document too.
    if "download" in lines or "download" in data:
        problem(
            lines.get("download", lines.get("<<")),
            "`download` is not allowed: Ultralytics runs it as a URL, shell command or Python; "
            "remove it and upload the images with the dataset",
        )

    root = "."
    raw_root = data.get("path")
    if raw_root not in (None, "", "."):
        if not isinstance(raw_root, str):
            problem(lines.get("path"), "`path` must be a string; set `path: .` or remove it")
        else:
            why = unsafe_path(raw_root)
            if why:
                problem(
                    lines.get("path"),
                    f"`path: {raw_root}` {why}; set `path: .` or remove it "
                    "(split paths are relative to the folder holding data.yaml)",
                )
            else:
                root = posixpath.normpath(raw_root)

    if "val" not in data and "validation" in data:
        data = {**data, "val": data["validation"]}
        lines.setdefault("val", lines.get("validation", 0))
        value_nodes.setdefault("val", value_nodes["validation"])
    splits: dict[str, list[str]] = {}
    for split in (*SPLITS, "minival"):  # Ultralytics resolves minival too: it must be safe as well
        value = data.get(split)
        line = lines.get(split)
        if value is None or value == "" or value == []:
            if split in REQUIRED_SPLITS:
                problem(
                    line,
                    f"`{split}` is missing: add `{split}: images/{split}` "
                    "(a folder of images or a .txt list, relative to data.yaml)",
                )
            continue
        entries = value if isinstance(value, list) else [value]
        item_nodes = value_nodes[split].value if isinstance(value_nodes.get(split), yaml.SequenceNode) else []
        resolved: list[str] = []
        for index, entry in enumerate(entries):
            entry_line = item_nodes[index].start_mark.line + 1 if index < len(item_nodes) else line
            if not isinstance(entry, str) or not entry.strip():
                problem(
                    entry_line,
                    f"`{split}` must be a path (or a list of paths) relative to data.yaml, not {short(entry)}",
                )
                continue
            inside = roboflow_fallback(root, entry) if not isinstance(value, list) else None
            if inside is not None:
                resolved.append(inside)
                continue
            why = unsafe_path(entry)
            if why:
                problem(entry_line, f"`{split}: {entry}` {why}; use a path relative to data.yaml")
                continue
            joined = posixpath.normpath(posixpath.join(root, entry))
            if _escapes(joined):
                problem(entry_line, f"`{split}: {entry}` climbs out of the dataset; use a path inside it")
                continue
            resolved.append(joined)
        if resolved and split != "minival":
            splits[split] = resolved

    names = _parse_names(data, lines, value_nodes, problem)
    warnings: list[Problem] = []
    if names is not None and "names" not in data:
        warnings.append(
            Problem(file, lines.get("nc"), f"no `names`: classes will be called class_0..class_{len(names) - 1}")
        )
    if names:
        seen: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in seen:
                warnings.append(
                    Problem(
                        file, lines.get("names"), f"class name {short(name)} is used by ids {seen[name]} and {index}"
                    )
                )
            seen.setdefault(name, index)

    for key, types in (("kpt_shape", list), ("flip_idx", list), ("channels", int)):
        if data.get(key) is not None and (not isinstance(data[key], types) or isinstance(data[key], bool)):
            problem(lines.get(key), f"`{key}` must be a {types.__name__}; fix or remove it")

    if names is None:
        return None, problems
    return DataYaml(names=names, splits=splits, raw=data, root=root, warnings=warnings, lines=lines), problems


class YamlTooLarge(yaml.YAMLError):
    """A YAML document holds more values than its kind of file ever needs (aliases expanded)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class _BoundedSafeLoader(yaml.SafeLoader):
    """SafeLoader that stops composing after `max_nodes` distinct nodes (memory stays bounded
    whatever the text is; the caller then checks the size with aliases expanded)."""

    max_nodes = MAX_YAML_NODES

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.composed = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if not self.check_event(yaml.AliasEvent):
            self.composed += 1
            if self.composed > self.max_nodes:
                mark = self.peek_event().start_mark
                raise YamlTooLarge(f"holds more than {self.max_nodes:,} values", mark.line + 1)
        return super().compose_node(parent, index)


def expanded_size(node: yaml.Node, limit: int) -> int:
    """How many values `node` stands for once its aliases are expanded, counting stops past `limit`.
    A node that contains itself (`&a [*a]`) counts as more than `limit`."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(current: yaml.Node) -> int:
        key = id(current)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            return limit + 1
        open_nodes.add(key)
        total = 1
        if isinstance(current, yaml.SequenceNode):
            children: list[yaml.Node] = current.value
        elif isinstance(current, yaml.MappingNode):
            children = [child for pair in current.value for child in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > limit:
                break
        open_nodes.discard(key)
        sizes[key] = total = min(total, limit + 1)
        return total

    return size(node)


def load_untrusted_yaml(text: str, *, max_nodes: int) -> tuple[yaml.Node | None, Any]:
    """(node, data) of a one-document YAML text with PyYAML's SafeLoader, refusing with YamlTooLarge a
    document of more than `max_nodes` values, YAML aliases expanded: what the trigger, the CLI and
    train.py parse from a dataset stays small however the text is written. Other YAML errors
    propagate as PyYAML raises them."""
    loader = _BoundedSafeLoader(text)
    loader.max_nodes = max_nodes
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        if expanded_size(node, max_nodes) > max_nodes:
            raise YamlTooLarge(f"stands for more than {max_nodes:,} values once its YAML aliases are expanded",
                               node.start_mark.line + 1)
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


def short(value: Any, limit: int = 40) -> str:
    """A value for a message: scalars as repr (cut), containers by kind (their repr can be huge)."""
    if isinstance(value, dict | list | tuple | set):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _escapes(normal: str) -> bool:
    return normal == ".." or normal.startswith("../")


def roboflow_fallback(root: str, entry: str) -> str | None:
    """Where Ultralytics finds a split given as one string `../x` that lies outside the dataset: it
    looks for `x` instead (check_det_dataset: `if not x.exists() and data[k].startswith("../")`), so
    Roboflow's exports (`train: ../train/images` beside train/) train as they are. The path inside the
    dataset (normalised, relative to data.yaml's folder), or None when this rule does not apply (the
    path stays inside, is a list item, or still leaves the dataset without its first `../`)."""
    if not entry.startswith("../") or unsafe_path(entry[3:]) is not None:
        return None
    if not _escapes(posixpath.normpath(posixpath.join(root, entry))):
        return None
    inside = posixpath.normpath(posixpath.join(root, entry[3:]))
    return None if _escapes(inside) else inside


def unsafe_path(value: str) -> str | None:
    """Why a path from data.yaml may not be used, or None when it is a plain relative path."""
    if "://" in value:
        return "is a URL"
    if "\\" in value:
        return "contains a backslash (write paths with /)"
    if value.startswith(("/", "~")) or (len(value) > 1 and value[1] == ":"):
        return "is an absolute path"
    if "\x00" in value:
        return "contains a NUL character"
    normal = posixpath.normpath(value)
    if normal == ".." or normal.startswith("../"):
        return "climbs out of the dataset (../)"
    return None


def _parse_names(
    data: dict[str, Any],
    lines: dict[str, int],
    value_nodes: dict[str, yaml.Node],
    problem: Any,
) -> list[str] | None:
    """Class names in id order, or None (after reporting) when `names`/`nc` are unusable."""
    raw_names = data.get("names")
    raw_nc = data.get("nc")
    names_line, nc_line = lines.get("names"), lines.get("nc")
    nc: int | None = None
    if raw_nc is not None:
        nc = as_int(raw_nc)
        if nc is None or nc < 1:
            problem(nc_line, f"`nc: {short(raw_nc)}` must be a whole number of classes (1 or more)")
            return None
        if nc > MAX_CLASSES:
            problem(nc_line, f"`nc: {nc:,}` is over the {MAX_CLASSES:,} classes a dataset may have; "
                             "give the real number of classes")
            return None
    if raw_names is None:
        if nc is None:
            problem(names_line, "`names` is missing: add the class names, e.g. `names: [cat, dog]`")
            return None
        return [f"class_{i}" for i in range(nc)]

    names: list[str] = []
    if isinstance(raw_names, list):
        items = list(enumerate(raw_names))
        nodes = value_nodes["names"].value if isinstance(value_nodes.get("names"), yaml.SequenceNode) else []
        item_lines = [n.start_mark.line + 1 for n in nodes]
    elif isinstance(raw_names, dict):
        items = []
        for key, value in raw_names.items():
            class_id = as_int(key)
            if class_id is None or class_id < 0:
                problem(names_line, f"`names` id {short(key)} is not a class id (0, 1, 2...)")
                return None
            items.append((class_id, value))
        items.sort(key=lambda item: item[0])
        ids = [class_id for class_id, _ in items]
        if ids != list(range(len(ids))):
            problem(
                names_line,
                f"`names` ids must be 0..{len(ids) - 1} without gaps or repeats; got {', '.join(map(str, ids))}",
            )
            return None
        item_lines = []
    else:
        problem(names_line, "`names` must be a list or a mapping {id: name}, e.g. `names: [cat, dog]`")
        return None
    if not items:
        problem(names_line, "`names` is empty: list at least one class")
        return None
    if len(items) > MAX_CLASSES:
        problem(names_line, f"`names` lists {len(items):,} classes, over the {MAX_CLASSES:,} a dataset may have")
        return None
    for position, (class_id, value) in enumerate(items):
        line = item_lines[position] if position < len(item_lines) else names_line
        if isinstance(value, bool) or not isinstance(value, str | int | float) or str(value).strip() == "":
            problem(line, f"class {class_id} needs a name (a string), not {short(value)}")
            return None
        names.append(str(value))
    if nc is not None and nc != len(names):
        problem(nc_line, f"`nc: {nc}` but `names` lists {len(names)} classes; make them agree (or drop `nc`)")
        return None
    return names


def as_int(value: Any) -> int | None:
    """An integer-like value (3, 3.0, "3") as int, as Ultralytics accepts it; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None
