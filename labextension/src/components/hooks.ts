import { ISignal } from '@lumino/signaling';
import { useEffect, useState } from 'react';

/** Re-render whenever the signal fires; returns a counter (a render key if needed). */
export function useSignal(
  signal: ISignal<unknown, unknown> | null | undefined
): number {
  const [count, setCount] = useState(0);
  useEffect(() => {
    if (!signal) {
      return;
    }
    const bump = () => setCount(n => n + 1);
    signal.connect(bump);
    return () => {
      signal.disconnect(bump);
    };
  }, [signal]);
  return count;
}
