export function parseObject(text: unknown): Record<string, any> | null;
export function isObject(value: unknown): value is Record<string, any>;
