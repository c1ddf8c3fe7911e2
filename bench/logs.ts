export async function benchLogs(): Promise<void> {}
