/** Colours per service (SVG fills and the legend). */
export const SERVICE_COLORS: Record<string, string> = {
  workflows: '#4f7cff',
  content: '#22a06b',
  knowledge: '#c77dff',
  monitoring: '#e8a33d',
};

/** The colour of a service (grey for one not listed). */
export function colorOf(service: string): string {
  return SERVICE_COLORS[service] ?? '#8a8f98';
}
