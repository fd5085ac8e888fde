export function ExerciseBanner({ mode }: { mode: string | undefined }) {
  if (mode !== "EXERCISE") return null;
  return (
    <div class="banner exercise" role="note" data-testid="exercise-banner">
      EXERCICE — rien de ce qui se passe ici n'appartient à une crise réelle.
    </div>
  );
}
