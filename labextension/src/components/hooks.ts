import { ISignal } from '@lumino/signaling';
import { RefObject, useEffect, useLayoutEffect, useRef, useState } from 'react';

/** Run `fn` on the next animation frame (soon, also where frames are paused). */
function nextFrame(fn: () => void): () => void {
  let done = false;
  const run = () => {
    if (!done) {
      done = true;
      fn();
    }
  };
  const frame = requestAnimationFrame(run);
  const timer = setTimeout(run, 100); // a hidden tab gets no frames
  return () => {
    done = true;
    cancelAnimationFrame(frame);
    clearTimeout(timer);
  };
}

/**
 * Re-render whenever the signal fires, at most once per animation frame (a streamed reply
 * fires per token); returns a counter (a render key if needed).
 */
export function useSignal(
  signal: ISignal<unknown, unknown> | null | undefined
): number {
  const [count, setCount] = useState(0);
  useEffect(() => {
    if (!signal) {
      return;
    }
    let cancel: (() => void) | null = null;
    const bump = () => {
      cancel =
        cancel ??
        nextFrame(() => {
          cancel = null;
          setCount(n => n + 1);
        });
    };
    signal.connect(bump);
    return () => {
      signal.disconnect(bump);
      cancel?.();
    };
  }, [signal]);
  return count;
}

/**
 * Keep an element's content rendered from `value` by an async `render` that fills the
 * element: renders run on animation frames, one at a time, always for the latest value, so
 * a streaming value is rendered at most once a frame and the old content stays until the
 * new one is ready (no flicker).
 */
export function useRenderedInto<T>(
  ref: RefObject<HTMLElement>,
  value: T,
  render: (host: HTMLElement, value: T) => Promise<void>
): void {
  const state = useRef({
    wanted: value,
    shown: undefined as T | undefined,
    busy: false,
    cancel: null as (() => void) | null,
    alive: true
  });
  useLayoutEffect(() => {
    const s = state.current;
    s.alive = true;
    return () => {
      s.alive = false;
      s.cancel?.();
    };
  }, []);
  useLayoutEffect(() => {
    const s = state.current;
    s.wanted = value;
    const pump = () => {
      s.cancel = null;
      const host = ref.current;
      if (!s.alive || !host || s.busy || s.shown === s.wanted) {
        return;
      }
      const target = s.wanted;
      s.busy = true;
      render(host, target)
        .catch(error => console.warn('Devstral: rendering failed', error))
        .finally(() => {
          s.busy = false;
          s.shown = target;
          if (s.alive && s.shown !== s.wanted && !s.cancel) {
            s.cancel = nextFrame(pump);
          }
        });
    };
    if (!s.busy && !s.cancel && s.shown !== value) {
      s.cancel = nextFrame(pump);
    }
  }, [value]);
}
