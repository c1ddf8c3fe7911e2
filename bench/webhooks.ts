export async function benchWebhooks(): Promise<void> {}
