// Pure: the fields of /etc/os-release vmrig decides on (Debian or Ubuntu, which release).

export interface OsRelease {
  id: string;
  codename: string;
  idLike: string[];
}

export function parseOsRelease(text: string): OsRelease {
  const kv = Object.fromEntries(
    text
      .split("\n")
      .map((l) => /^(\w+)=("?)(.*)\2$/.exec(l.trim()))
      .filter(Boolean)
      .map((m) => [m![1], m![3]]),
  ) as Record<string, string>;
  return {
    id: kv.ID ?? "",
    codename: kv.VERSION_CODENAME ?? "",
    idLike: (kv.ID_LIKE ?? "").split(/\s+/).filter(Boolean),
  };
}
