/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Intrusive doubly-linked lists: an item has `next` and `prev` pointers, a
 * list is a pointer to its first item. */
#pragma once

#define LIST_PREPEND(head, item)                                     \
        do {                                                         \
                __typeof__(item) _item = (item);                     \
                _item->prev = NULL;                                  \
                _item->next = (head);                                \
                if (_item->next)                                     \
                        _item->next->prev = _item;                   \
                (head) = _item;                                      \
        } while (0)

/* Insert @item after @after, or first when @after is NULL. */
#define LIST_INSERT_AFTER(head, after, item)                         \
        do {                                                         \
                __typeof__(item) _new = (item), _after = (after);    \
                if (!_after) {                                       \
                        LIST_PREPEND(head, _new);                    \
                        break;                                       \
                }                                                    \
                _new->prev = _after;                                 \
                _new->next = _after->next;                           \
                if (_new->next)                                      \
                        _new->next->prev = _new;                     \
                _after->next = _new;                                 \
        } while (0)

#define LIST_REMOVE(head, item)                                      \
        do {                                                         \
                __typeof__(item) _item = (item);                     \
                if (_item->prev)                                     \
                        _item->prev->next = _item->next;             \
                else                                                 \
                        (head) = _item->next;                        \
                if (_item->next)                                     \
                        _item->next->prev = _item->prev;             \
                _item->next = _item->prev = NULL;                    \
        } while (0)

/* Iterate over a list; @item is declared here, and may not be removed. */
#define LIST_FOREACH(item, head) for (__typeof__(*(head)) *item = (head); item; item = item->next)
