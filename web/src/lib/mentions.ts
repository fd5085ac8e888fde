// Mentions: "@Prénom Nom" of a member or "@Nom de cellule" in the text names them.

export interface Named {
  id: string;
  name: string;
}

/** The ids of the people and cells mentioned in `text`, longest names first (no prefix confusion). */
export function mentioned(text: string, people: Named[], cells: Named[]): { users: string[]; cells: string[] } {
  const lower = text.toLocaleLowerCase("fr-FR");
  const find = (items: Named[]): string[] => {
    const found: string[] = [];
    let rest = lower;
    for (const item of [...items].sort((a, b) => b.name.length - a.name.length)) {
      const needle = `@${item.name.toLocaleLowerCase("fr-FR")}`;
      if (rest.includes(needle)) {
        found.push(item.id);
        rest = rest.split(needle).join(" ");
      }
    }
    return found;
  };
  return { users: find(people), cells: find(cells) };
}
