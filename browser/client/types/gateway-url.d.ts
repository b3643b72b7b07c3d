export function gatewayUrl(): string;
