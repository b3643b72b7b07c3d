export function emit(target: EventTarget, type: string, detail?: unknown): void;
export function listen(target: EventTarget, type: string, listener: (event: any) => void): () => void;
