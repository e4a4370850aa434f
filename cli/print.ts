/** Output of the commands for people and scripts: a line (newline added when missing), and JSON. */
export const print = (text: string): void => void process.stdout.write(text.endsWith("\n") ? text : text + "\n");
export const printJson = (value: unknown): void => print(JSON.stringify(value, null, 2));
