// A virtualized list of fixed-height rows: only the rows in view (plus a few) are in the DOM, so
// 100,000 lines scroll and update as cheaply as 50. Positions are set through Preact style
// objects (element.style properties), never style strings: the CSP has no 'unsafe-inline'.
import type { ComponentChildren } from "preact";
import { useLayoutEffect, useRef, useState } from "preact/hooks";
import "./virtual-list.css";

/** Rows rendered above and below the visible ones, so fast scrolling shows no gaps. */
const OVERSCAN = 10;

export interface VirtualListProps {
  count: number;
  /** Every row's height in px (the row CSS must match it). */
  rowHeight: number;
  /** The content of row `index`. */
  renderRow: (index: number) => ComponentChildren;
  /** Class of each row element (besides "vlist-row"). */
  rowClass?: (index: number) => string;
  /** The accessible name of the scroll region. */
  label: string;
  /** Keep the end in view while the user has not scrolled up. */
  stickToEnd?: boolean;
  class?: string;
  id?: string;
}

export function VirtualList(props: VirtualListProps) {
  const { count, rowHeight, renderRow, stickToEnd = false } = props;
  const box = useRef<HTMLDivElement>(null);
  // The scroll position is read in onScroll (a ref, not state: while the list sticks to the
  // end it is not tracked, and leaving the end must re-render even if the value is the same).
  const scrollTop = useRef(0);
  const [, rerender] = useState(0);
  const [viewHeight, setViewHeight] = useState(480);
  // Whether the user is at the end (so new rows keep it in view); scrolling up clears it.
  const atEnd = useRef(true);
  const frame = useRef(0);

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    setViewHeight(el.clientHeight);
    const ro = new ResizeObserver(() => setViewHeight(el.clientHeight));
    ro.observe(el);
    return () => {
      ro.disconnect();
      cancelAnimationFrame(frame.current);
    };
  }, []);

  const total = count * rowHeight;
  const endTop = Math.max(0, total - viewHeight);
  const top = stickToEnd && atEnd.current ? endTop : Math.min(scrollTop.current, endTop);

  // After rendering, scroll to where the rendered rows are (the end, when sticking to it).
  // Compared with the last position set, not el.scrollTop: reading that would force a layout.
  const lastSet = useRef(-1);
  useLayoutEffect(() => {
    const el = box.current;
    if (el && stickToEnd && atEnd.current && lastSet.current !== endTop) {
      el.scrollTop = endTop;
      lastSet.current = endTop;
    }
  });

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    const wasAtEnd = atEnd.current;
    atEnd.current = el.scrollTop + el.clientHeight >= el.scrollHeight - rowHeight;
    if (!atEnd.current) lastSet.current = -1;
    // Staying at the end needs no render (rows are placed from the end, and the scroll this
    // list made itself costs no second one); anything else re-renders once per frame, however
    // many scroll events arrive.
    if (stickToEnd && atEnd.current && wasAtEnd) return;
    if (frame.current === 0) {
      frame.current = requestAnimationFrame(() => {
        frame.current = 0;
        if (box.current) scrollTop.current = box.current.scrollTop;
        rerender((n) => n + 1);
      });
    }
  };

  const first = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
  const last = Math.min(count, Math.ceil((top + viewHeight) / rowHeight) + OVERSCAN);
  const rowStyle = { height: `${rowHeight}px` };
  const rows: ComponentChildren[] = [];
  for (let i = first; i < last; i++) {
    // Unkeyed: the same elements are reused for whichever rows are in view, so streaming at the
    // end patches a few dozen text nodes per frame instead of creating and removing elements.
    rows.push(
      <div class={`vlist-row${props.rowClass ? ` ${props.rowClass(i)}` : ""}`} style={rowStyle} data-index={i}>
        {renderRow(i)}
      </div>,
    );
  }
  return (
    <div
      ref={box}
      id={props.id}
      class={`vlist${props.class ? ` ${props.class}` : ""}`}
      // A keyboard user scrolls it with the arrow keys once it has focus.
      tabIndex={0}
      role="region"
      aria-label={props.label}
      onScroll={onScroll}
    >
      <div class="vlist-space" style={{ height: `${total}px` }}>
        {/* One offset for the rows in view (they are in normal flow inside it): a frame moves
            one element, not every row. */}
        <div class="vlist-window" style={{ transform: `translateY(${first * rowHeight}px)` }}>
          {rows}
        </div>
      </div>
    </div>
  );
}

/** Scrolls a VirtualList's element to its end (and so makes it stick there again). */
export function scrollToEnd(el: HTMLElement | null): void {
  if (el) el.scrollTop = el.scrollHeight;
}
