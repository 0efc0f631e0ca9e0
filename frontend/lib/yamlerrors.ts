/** Recipe errors read `file:line: field: problem` (one a line); find the line numbers they name. */
export interface LineError {
  line: number | null;
  text: string;
}

export function lineErrors(message: string): LineError[] {
  return message
    .split('\n')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((text) => {
      const m = text.match(/^.+?:(\d+):\s/) ?? text.match(/\bline (\d+)\b/i);
      return { line: m ? Number(m[1]) : null, text };
    });
}
