// The unread mentions of a crisis while its chat is not on screen (the home, the main courante): counted
// by the server, counted again whenever the chat moves, so that the tab's title tells them.
import { useEffect } from "preact/hooks";
import { gql, onLink, subscribe, type Subscription } from "../api/graphql";
import type { ChannelsQuery } from "../api/generated";
import { CHANNELS, CHAT_UPDATES } from "../api/operations";
import { setUnreadMentions } from "../lib/title";

export function useUnreadMentionsOf(crisisId: string | null): void {
  useEffect(() => {
    if (!crisisId) {
      setUnreadMentions(0);
      return;
    }
    let stopped = false;
    let sub: Subscription | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const count = async () => {
      try {
        const data = await gql<ChannelsQuery>(CHANNELS, { crisisId });
        if (!stopped) setUnreadMentions(data.chatChannels.reduce((n, c) => n + c.unreadMentions, 0));
      } catch {
        // Offline or no longer a member: the title keeps its last count until the next update.
      }
    };
    // A burst of messages is counted once, a moment after it.
    const later = () => {
      clearTimeout(timer);
      timer = setTimeout(() => void count(), 300);
    };
    const open = () => {
      sub?.close();
      sub = subscribe(CHAT_UPDATES, () => ({ crisisId, resume: null }), later, (end) => {
        if (stopped || end?.code === "forbidden") return;
        retry = setTimeout(open, 1_000);
      });
    };
    void count();
    open();
    let wasOnline = true;
    const unlisten = onLink((state) => {
      if (state === "online" && !wasOnline) later(); // what came during the cut
      wasOnline = state === "online";
    });
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(retry);
      sub?.close();
      unlisten();
    };
  }, [crisisId]);
}
