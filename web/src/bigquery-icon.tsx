// The BigQuery mark carried by linked items: a simplified magnifier-over-bars
// glyph drawn inline (no external asset), with the accessible name "BigQuery".
export function BigQueryIcon({ size = 16 }: { size?: number }) {
  return (
    <svg role="img" aria-label="BigQuery" width={size} height={size} viewBox="0 0 24 24" className="bq-icon">
      <title>BigQuery</title>
      <path d="M12 2 21 7v10l-9 5-9-5V7z" fill="#4285f4" />
      <circle cx="11.2" cy="11.2" r="4.6" fill="none" stroke="#fff" strokeWidth="1.8" />
      <path d="M9.4 13v-2M11.2 13V9.6M13 13v-1.4" stroke="#fff" strokeWidth="1.3" strokeLinecap="round" />
      <path d="m14.6 14.6 3 3" stroke="#fff" strokeWidth="2" strokeLinecap="round" />
    </svg>
  );
}
